using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>The answer to a request that succeeded.</summary>
/// <param name="RequestId">The request's id.</param>
/// <param name="Offset">For Publish, the stored message's offset, or for a duplicate the offset of the message it duplicates; otherwise null.</param>
/// <param name="Duplicate">True when a Publish was dropped by the topic's compaction window.</param>
/// <param name="Durable">For Publish: true when the message (or, for a duplicate, the original) was already committed to disk.</param>
public readonly record struct AckFrame(ulong RequestId, long? Offset, bool Duplicate, bool Durable = false) : IFrameCodec<AckFrame>
{
    static FrameType IFrameCodec<AckFrame>.Type => FrameType.Ack;

    int IFrameCodec<AckFrame>.GetFieldsSize() =>
        FieldSize.Int64 + FieldSize.Byte + (Offset.HasValue ? FieldSize.Int64 : 0) + FieldSize.Byte + FieldSize.Byte;

    void IFrameCodec<AckFrame>.WriteFields(ref FieldWriter writer)
    {
        writer.WriteUInt64(RequestId);
        writer.WriteBool(Offset.HasValue);
        if (Offset.HasValue)
        {
            writer.WriteInt64(Offset.Value);
        }

        writer.WriteBool(Duplicate);
        writer.WriteBool(Durable);
    }

    static AckFrame IFrameCodec<AckFrame>.ReadFields(ref FieldReader reader)
    {
        var requestId = reader.ReadUInt64();
        long? offset = reader.ReadBool() ? reader.ReadInt64() : null;
        var duplicate = reader.ReadBool();
        return new(requestId, offset, duplicate, reader.ReadBool());
    }
}
