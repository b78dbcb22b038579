using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>A delivered message. When decoded, <see cref="Key"/> and <see cref="Payload"/> point into the read buffer.</summary>
/// <param name="Topic">The topic it was published to.</param>
/// <param name="Sequence">
/// Its sequence in the topic: 1 for the topic's first message, one more for each message stored after it. Encoded as a
/// <c>u64</c>, so it must not be negative.
/// </param>
/// <param name="TimestampMs">When the server accepted it, in Unix milliseconds.</param>
/// <param name="Key">Its compaction key, or null.</param>
/// <param name="Payload">The message body.</param>
/// <param name="Headers">Its headers as a <see cref="HeaderBlock"/>, as published; empty for none.</param>
/// <param name="DeliveryCount">
/// How many times the server has delivered this message to the subscription's consumer (for a consumer group, to any of its
/// members), this delivery included: 1 for a first delivery. Subscriptions outside a group always carry 1.
/// </param>
public readonly record struct MessageFrame(
    string Topic, long Sequence, long TimestampMs, ReadOnlyMemory<byte>? Key, ReadOnlyMemory<byte> Payload, ReadOnlyMemory<byte> Headers = default,
    uint DeliveryCount = 1)
    : IFrameCodec<MessageFrame>
{
    static FrameType IFrameCodec<MessageFrame>.Type => FrameType.Message;

    int IFrameCodec<MessageFrame>.GetFieldsSize() =>
        FieldSize.String(Topic) + FieldSize.Sequence(Sequence, nameof(Sequence)) + FieldSize.Int64
        + FieldSize.OptionalKey(Key.HasValue, Key?.Length ?? 0) + FieldSize.Bytes(Payload.Length) + FieldSize.Bytes(Headers.Length) + FieldSize.UInt32;

    void IFrameCodec<MessageFrame>.WriteFields(ref FieldWriter writer)
    {
        writer.WriteString(Topic);
        writer.WriteSequence(Sequence);
        writer.WriteInt64(TimestampMs);
        writer.WriteOptionalKey(Key.HasValue, Key.HasValue ? Key.Value.Span : default);
        writer.WriteBytes(Payload.Span);
        writer.WriteBytes(Headers.Span);
        writer.WriteUInt32(DeliveryCount);
    }

    static MessageFrame IFrameCodec<MessageFrame>.ReadFields(ref FieldReader reader) =>
        new(reader.ReadString(), reader.ReadSequence(), reader.ReadInt64(), reader.ReadOptionalKey(), reader.ReadBytes(), reader.ReadHeaders(), reader.ReadUInt32());
}
