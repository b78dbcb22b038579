using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>A delivered message. When decoded, <see cref="Key"/> and <see cref="Payload"/> point into the read buffer.</summary>
/// <param name="Topic">The topic it was published to.</param>
/// <param name="Offset">Its position in the topic's log; increases with publish order.</param>
/// <param name="TimestampMs">When the server accepted it, in Unix milliseconds.</param>
/// <param name="Key">Its compaction key, or null.</param>
/// <param name="Payload">The message body.</param>
public readonly record struct MessageFrame(string Topic, long Offset, long TimestampMs, ReadOnlyMemory<byte>? Key, ReadOnlyMemory<byte> Payload)
    : IFrameCodec<MessageFrame>
{
    static FrameType IFrameCodec<MessageFrame>.Type => FrameType.Message;

    int IFrameCodec<MessageFrame>.GetFieldsSize() =>
        FieldSize.String(Topic) + FieldSize.Int64 + FieldSize.Int64 + FieldSize.OptionalKey(Key.HasValue, Key?.Length ?? 0) + FieldSize.Bytes(Payload.Length);

    void IFrameCodec<MessageFrame>.WriteFields(ref FieldWriter writer)
    {
        writer.WriteString(Topic);
        writer.WriteInt64(Offset);
        writer.WriteInt64(TimestampMs);
        writer.WriteOptionalKey(Key.HasValue, Key.HasValue ? Key.Value.Span : default);
        writer.WriteBytes(Payload.Span);
    }

    static MessageFrame IFrameCodec<MessageFrame>.ReadFields(ref FieldReader reader) =>
        new(reader.ReadString(), reader.ReadInt64(), reader.ReadInt64(), reader.ReadOptionalKey(), reader.ReadBytes());
}
