using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>Starts delivery of a topic to this connection.</summary>
/// <param name="RequestId">Echoed in the Ack or Error.</param>
/// <param name="Topic">The topic to subscribe to.</param>
/// <param name="From">
/// Where to start: the retained messages, only new ones, a sequence or a time. On the wire its kind is the <c>from</c> byte
/// and its value the <c>position</c> field; the codec carries any value, and the server refuses those out of range.
/// </param>
/// <param name="Prefetch">How many delivered messages may await Commit before the server pauses (at least 1).</param>
/// <param name="DurableName">
/// Names a durable consumer: the server keeps its last committed sequence, and a later Subscribe with the same name resumes
/// after it (and ignores <paramref name="From"/>, unless the stored position is lost). Null for an ordinary subscription.
/// </param>
/// <param name="AckPolicy">
/// <see cref="AckPolicy.Explicit"/>: deliveries wait for Commit within <paramref name="Prefetch"/>. <see cref="AckPolicy.None"/>:
/// no Commit, delivery paced by the socket alone.
/// </param>
/// <param name="Group">
/// Joins the consumer group of this name on the topic: its members share the messages, each to one member at a time. Null for
/// a subscription of its own. A group is durable: the server keeps its state. Exclusive with <paramref name="DurableName"/>.
/// </param>
/// <param name="AckWaitMs">Group only: a delivery not committed within this many ms is redelivered; 0 = the server's default (30 s).</param>
/// <param name="MaxDeliver">Group only: after this many deliveries a message goes to <paramref name="DeadLetterTopic"/> (or is dropped); 0 = unlimited.</param>
/// <param name="DeadLetterTopic">Group only: where messages that reached <paramref name="MaxDeliver"/> go; null to drop them.</param>
public readonly record struct SubscribeFrame(
    ulong RequestId, string Topic, StartPosition From, uint Prefetch, string? DurableName = null, AckPolicy AckPolicy = AckPolicy.Explicit,
    string? Group = null, uint AckWaitMs = 0, uint MaxDeliver = 0, string? DeadLetterTopic = null)
    : IFrameCodec<SubscribeFrame>
{
    static FrameType IFrameCodec<SubscribeFrame>.Type => FrameType.Subscribe;

    int IFrameCodec<SubscribeFrame>.GetFieldsSize() =>
        FieldSize.Int64 + FieldSize.String(Topic) + FieldSize.Byte + FieldSize.Int64 + FieldSize.UInt32 + FieldSize.Byte
        + (DurableName is null ? 0 : FieldSize.String(DurableName)) + FieldSize.Byte
        + FieldSize.Byte + (Group is null ? 0 : FieldSize.String(Group)) + FieldSize.UInt32 + FieldSize.UInt32
        + FieldSize.Byte + (DeadLetterTopic is null ? 0 : FieldSize.String(DeadLetterTopic));

    void IFrameCodec<SubscribeFrame>.WriteFields(ref FieldWriter writer)
    {
        writer.WriteUInt64(RequestId);
        writer.WriteString(Topic);
        writer.WriteByte((byte)From.Kind);
        writer.WriteInt64(From.Value);
        writer.WriteUInt32(Prefetch);
        writer.WriteBool(DurableName is not null);
        if (DurableName is not null)
        {
            writer.WriteString(DurableName);
        }

        writer.WriteByte((byte)AckPolicy);
        writer.WriteBool(Group is not null);
        if (Group is not null)
        {
            writer.WriteString(Group);
        }

        writer.WriteUInt32(AckWaitMs);
        writer.WriteUInt32(MaxDeliver);
        writer.WriteBool(DeadLetterTopic is not null);
        if (DeadLetterTopic is not null)
        {
            writer.WriteString(DeadLetterTopic);
        }
    }

    static SubscribeFrame IFrameCodec<SubscribeFrame>.ReadFields(ref FieldReader reader)
    {
        var requestId = reader.ReadUInt64();
        var topic = reader.ReadString();
        var from = reader.ReadByte();
        if (from > (byte)StartPositionKind.Time)
        {
            throw new ProtocolViolationException(ErrorCode.MalformedFrame, $"Subscribe start position {from} is not defined");
        }

        var position = reader.ReadInt64();
        var prefetch = reader.ReadUInt32();
        var durableName = reader.ReadBool() ? reader.ReadString() : null;
        var ackPolicy = reader.ReadByte();
        if (ackPolicy > (byte)AckPolicy.None)
        {
            throw new ProtocolViolationException(ErrorCode.MalformedFrame, $"Subscribe ack policy {ackPolicy} is not defined");
        }

        var group = reader.ReadBool() ? reader.ReadString() : null;
        var ackWaitMs = reader.ReadUInt32();
        var maxDeliver = reader.ReadUInt32();
        var deadLetterTopic = reader.ReadBool() ? reader.ReadString() : null;
        return new(
            requestId, topic, new StartPosition((StartPositionKind)from, position), prefetch, durableName, (AckPolicy)ackPolicy,
            group, ackWaitMs, maxDeliver, deadLetterTopic);
    }
}
