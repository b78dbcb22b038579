using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>The answer to a request that succeeded.</summary>
/// <param name="RequestId">The request's id.</param>
/// <param name="Sequence">
/// For Publish, the stored message's sequence, or for a duplicate the sequence of the message it duplicates. For Subscribe,
/// the sequence the subscription starts at: that of the first message it can deliver. Null for CreateTopic and Unsubscribe.
/// Encoded as a <c>u64</c>, so it must not be negative.
/// </param>
/// <param name="Duplicate">True when a Publish was dropped by the topic's compaction window.</param>
/// <param name="Durable">For Publish: true when the message (or, for a duplicate, the original) was already committed to disk.</param>
public readonly record struct AckFrame(ulong RequestId, long? Sequence, bool Duplicate, bool Durable = false) : IFrameCodec<AckFrame>
{
    static FrameType IFrameCodec<AckFrame>.Type => FrameType.Ack;

    int IFrameCodec<AckFrame>.GetFieldsSize() =>
        FieldSize.Int64 + FieldSize.Byte + (Sequence is { } sequence ? FieldSize.Sequence(sequence, nameof(Sequence)) : 0) + FieldSize.Byte + FieldSize.Byte;

    void IFrameCodec<AckFrame>.WriteFields(ref FieldWriter writer)
    {
        writer.WriteUInt64(RequestId);
        writer.WriteBool(Sequence.HasValue);
        if (Sequence is { } sequence)
        {
            writer.WriteSequence(sequence);
        }

        writer.WriteBool(Duplicate);
        writer.WriteBool(Durable);
    }

    static AckFrame IFrameCodec<AckFrame>.ReadFields(ref FieldReader reader)
    {
        var requestId = reader.ReadUInt64();
        long? sequence = reader.ReadBool() ? reader.ReadSequence() : null;
        var duplicate = reader.ReadBool();
        return new(requestId, sequence, duplicate, reader.ReadBool());
    }
}
