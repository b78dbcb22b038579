using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>Publishes one message. When decoded, <see cref="Key"/> and <see cref="Payload"/> point into the read buffer.</summary>
/// <param name="RequestId">Echoed in the Ack or Error.</param>
/// <param name="Topic">The topic to publish to.</param>
/// <param name="Key">The compaction key, or null for an unkeyed message.</param>
/// <param name="Payload">The message body.</param>
public readonly record struct PublishFrame(ulong RequestId, string Topic, ReadOnlyMemory<byte>? Key, ReadOnlyMemory<byte> Payload)
    : IFrameCodec<PublishFrame>
{
    static FrameType IFrameCodec<PublishFrame>.Type => FrameType.Publish;

    int IFrameCodec<PublishFrame>.GetFieldsSize() =>
        FieldSize.Int64 + FieldSize.String(Topic) + FieldSize.OptionalKey(Key.HasValue, Key?.Length ?? 0) + FieldSize.Bytes(Payload.Length);

    void IFrameCodec<PublishFrame>.WriteFields(ref FieldWriter writer)
    {
        writer.WriteUInt64(RequestId);
        writer.WriteString(Topic);
        writer.WriteOptionalKey(Key.HasValue, Key.HasValue ? Key.Value.Span : default);
        writer.WriteBytes(Payload.Span);
    }

    static PublishFrame IFrameCodec<PublishFrame>.ReadFields(ref FieldReader reader) =>
        new(reader.ReadUInt64(), reader.ReadString(), reader.ReadOptionalKey(), reader.ReadBytes());
}
