using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>Publishes one message. When decoded, <see cref="Key"/> and <see cref="Payload"/> point into the read buffer.</summary>
/// <param name="RequestId">Echoed in the Ack or Error.</param>
/// <param name="Topic">The topic to publish to.</param>
/// <param name="Key">The compaction key, or null for an unkeyed message.</param>
/// <param name="Payload">The message body.</param>
/// <param name="ProducerSequence">
/// For an idempotent publisher (a Hello with a producer id), this publish's number in the producer's own order, 1 or
/// more: the server stores a publish at most once per producer id and number, and answers a repeat with the original's
/// Ack. 0: not idempotent.
/// </param>
/// <param name="Headers">The message's headers as a <see cref="HeaderBlock"/>; empty for none.</param>
public readonly record struct PublishFrame(
    ulong RequestId, string Topic, ReadOnlyMemory<byte>? Key, ReadOnlyMemory<byte> Payload, ulong ProducerSequence = 0, ReadOnlyMemory<byte> Headers = default)
    : IFrameCodec<PublishFrame>
{
    static FrameType IFrameCodec<PublishFrame>.Type => FrameType.Publish;

    int IFrameCodec<PublishFrame>.GetFieldsSize() =>
        FieldSize.Int64 + FieldSize.String(Topic) + FieldSize.OptionalKey(Key.HasValue, Key?.Length ?? 0) + FieldSize.Bytes(Payload.Length)
        + FieldSize.Int64 + FieldSize.Bytes(Headers.Length);

    void IFrameCodec<PublishFrame>.WriteFields(ref FieldWriter writer)
    {
        writer.WriteUInt64(RequestId);
        writer.WriteString(Topic);
        writer.WriteOptionalKey(Key.HasValue, Key.HasValue ? Key.Value.Span : default);
        writer.WriteBytes(Payload.Span);
        writer.WriteUInt64(ProducerSequence);
        writer.WriteBytes(Headers.Span);
    }

    static PublishFrame IFrameCodec<PublishFrame>.ReadFields(ref FieldReader reader) =>
        new(reader.ReadUInt64(), reader.ReadString(), reader.ReadOptionalKey(), reader.ReadBytes(), reader.ReadUInt64(), reader.ReadHeaders());
}
