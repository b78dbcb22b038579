using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>Stops delivery of one topic to this connection.</summary>
/// <param name="RequestId">Echoed in the Ack or Error.</param>
/// <param name="Topic">The topic to stop receiving.</param>
public readonly record struct UnsubscribeFrame(ulong RequestId, string Topic) : IFrameCodec<UnsubscribeFrame>
{
    static FrameType IFrameCodec<UnsubscribeFrame>.Type => FrameType.Unsubscribe;

    int IFrameCodec<UnsubscribeFrame>.GetFieldsSize() => FieldSize.Int64 + FieldSize.String(Topic);

    void IFrameCodec<UnsubscribeFrame>.WriteFields(ref FieldWriter writer)
    {
        writer.WriteUInt64(RequestId);
        writer.WriteString(Topic);
    }

    static UnsubscribeFrame IFrameCodec<UnsubscribeFrame>.ReadFields(ref FieldReader reader) =>
        new(reader.ReadUInt64(), reader.ReadString());
}
