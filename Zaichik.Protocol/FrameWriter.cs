using System.Buffers;
using System.Buffers.Binary;
using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>Encodes frames into any <see cref="IBufferWriter{T}"/> (a PipeWriter, an ArrayBufferWriter). Stateless.</summary>
public static class FrameWriter
{
    private const int HeaderSize = ProtocolLimits.LengthPrefixSize + 1;

    /// <summary>Writes a Hello frame.</summary>
    public static void Write(IBufferWriter<byte> output, in HelloFrame frame) => WriteFrame(output, frame);

    /// <summary>Writes a CreateTopic frame.</summary>
    public static void Write(IBufferWriter<byte> output, in CreateTopicFrame frame) => WriteFrame(output, frame);

    /// <summary>Writes a Publish frame.</summary>
    public static void Write(IBufferWriter<byte> output, in PublishFrame frame) => WriteFrame(output, frame);

    /// <summary>Writes a Subscribe frame.</summary>
    public static void Write(IBufferWriter<byte> output, in SubscribeFrame frame) => WriteFrame(output, frame);

    /// <summary>Writes an Unsubscribe frame.</summary>
    public static void Write(IBufferWriter<byte> output, in UnsubscribeFrame frame) => WriteFrame(output, frame);

    /// <summary>Writes a Commit frame.</summary>
    public static void Write(IBufferWriter<byte> output, in CommitFrame frame) => WriteFrame(output, frame);

    /// <summary>Writes a Close frame.</summary>
    public static void Write(IBufferWriter<byte> output, in CloseFrame frame) => WriteFrame(output, frame);

    /// <summary>Writes a Nack frame.</summary>
    public static void Write(IBufferWriter<byte> output, in NackFrame frame) => WriteFrame(output, frame);

    /// <summary>Writes a Ping frame.</summary>
    public static void Write(IBufferWriter<byte> output, in PingFrame frame) => WriteFrame(output, frame);

    /// <summary>Writes a Pong frame.</summary>
    public static void Write(IBufferWriter<byte> output, in PongFrame frame) => WriteFrame(output, frame);

    /// <summary>Writes a Message frame.</summary>
    public static void Write(IBufferWriter<byte> output, in MessageFrame frame) => WriteFrame(output, frame);

    /// <summary>Writes an Ack frame.</summary>
    public static void Write(IBufferWriter<byte> output, in AckFrame frame) => WriteFrame(output, frame);

    /// <summary>Writes an Error frame.</summary>
    public static void Write(IBufferWriter<byte> output, in ErrorFrame frame) => WriteFrame(output, frame);

    /// <summary>Writes a Redirect frame.</summary>
    public static void Write(IBufferWriter<byte> output, in RedirectFrame frame) => WriteFrame(output, frame);

    /// <summary>
    /// Writes a Message frame from spans, for senders whose message bytes are not in managed memory
    /// (the server delivering straight from its log). The topic is given already UTF-8 encoded.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="sequence"/> is negative: a sequence is encoded as a <c>u64</c>.</exception>
    public static void WriteMessage(
        IBufferWriter<byte> output,
        ReadOnlySpan<byte> topicUtf8,
        long sequence,
        long timestampMs,
        bool hasKey,
        ReadOnlySpan<byte> key,
        ReadOnlySpan<byte> payload,
        ReadOnlySpan<byte> headers = default,
        uint deliveryCount = 1)
    {
        var fieldsSize = FieldSize.UInt16 + topicUtf8.Length + FieldSize.Sequence(sequence, nameof(sequence)) + FieldSize.Int64
            + FieldSize.OptionalKey(hasKey, key.Length) + FieldSize.Bytes(payload.Length) + FieldSize.Bytes(headers.Length) + FieldSize.UInt32;
        var span = BeginFrame(output, FrameType.Message, fieldsSize);
        var writer = new FieldWriter(span);
        writer.WriteUtf8(topicUtf8);
        writer.WriteSequence(sequence);
        writer.WriteInt64(timestampMs);
        writer.WriteOptionalKey(hasKey, key);
        writer.WriteBytes(payload);
        writer.WriteBytes(headers);
        writer.WriteUInt32(deliveryCount);
        output.Advance(HeaderSize + fieldsSize);
    }

    /// <summary>The total bytes (length prefix included) a Message frame with these sizes takes on the wire.</summary>
    public static int MessageFrameSize(int topicUtf8Length, bool hasKey, int keyLength, int payloadLength, int headersLength = 0) =>
        HeaderSize + FieldSize.UInt16 + topicUtf8Length + FieldSize.Int64 + FieldSize.Int64
        + FieldSize.OptionalKey(hasKey, keyLength) + FieldSize.Bytes(payloadLength) + FieldSize.Bytes(headersLength) + FieldSize.UInt32;

    private static void WriteFrame<TFrame>(IBufferWriter<byte> output, in TFrame frame)
        where TFrame : struct, IFrameCodec<TFrame>
    {
        var fieldsSize = frame.GetFieldsSize();
        var span = BeginFrame(output, TFrame.Type, fieldsSize);
        var writer = new FieldWriter(span);
        frame.WriteFields(ref writer);
        output.Advance(HeaderSize + fieldsSize);
    }

    /// <summary>Reserves the whole frame, writes the length prefix and type, and returns the span for the fields.</summary>
    private static Span<byte> BeginFrame(IBufferWriter<byte> output, FrameType type, int fieldsSize)
    {
        var span = output.GetSpan(HeaderSize + fieldsSize);
        BinaryPrimitives.WriteUInt32BigEndian(span, (uint)(1 + fieldsSize));
        span[ProtocolLimits.LengthPrefixSize] = (byte)type;
        return span.Slice(HeaderSize, fieldsSize);
    }
}
