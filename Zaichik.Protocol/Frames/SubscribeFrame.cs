using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>Starts delivery of a topic to this connection.</summary>
/// <param name="RequestId">Echoed in the Ack or Error.</param>
/// <param name="Topic">The topic to subscribe to.</param>
/// <param name="From">Start with the retained messages or only with new ones.</param>
/// <param name="Prefetch">How many delivered messages may await Commit before the server pauses (at least 1).</param>
public readonly record struct SubscribeFrame(ulong RequestId, string Topic, StartPosition From, uint Prefetch)
    : IFrameCodec<SubscribeFrame>
{
    static FrameType IFrameCodec<SubscribeFrame>.Type => FrameType.Subscribe;

    int IFrameCodec<SubscribeFrame>.GetFieldsSize() =>
        FieldSize.Int64 + FieldSize.String(Topic) + FieldSize.Byte + FieldSize.UInt32;

    void IFrameCodec<SubscribeFrame>.WriteFields(ref FieldWriter writer)
    {
        writer.WriteUInt64(RequestId);
        writer.WriteString(Topic);
        writer.WriteByte((byte)From);
        writer.WriteUInt32(Prefetch);
    }

    static SubscribeFrame IFrameCodec<SubscribeFrame>.ReadFields(ref FieldReader reader)
    {
        var requestId = reader.ReadUInt64();
        var topic = reader.ReadString();
        var from = reader.ReadByte();
        if (from > (byte)StartPosition.Latest)
        {
            throw new ProtocolViolationException(ErrorCode.MalformedFrame, $"Subscribe start position {from} is not defined");
        }

        return new(requestId, topic, (StartPosition)from, reader.ReadUInt32());
    }
}
