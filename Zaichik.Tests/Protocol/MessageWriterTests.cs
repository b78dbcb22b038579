using System.IO.Pipelines;
using System.Text;
using Zaichik.Protocol;
using static Zaichik.Tests.Protocol.CodecTestHelpers;

namespace Zaichik.Tests.Protocol;

/// <summary>The span overload the server delivers from its log with is byte-for-byte the same frame as the struct overload.</summary>
public sealed class MessageWriterTests
{
    public static TheoryData<string, long, long, bool, byte[], byte[]> Messages() => new()
    {
        { "prices", 0, 0, false, [], [] },
        { "prices", 4096, 1_700_000_000_000, true, [0x6B, 0x31], [1, 2, 3] },
        { "t", long.MaxValue, long.MinValue, true, [], [0xFF] },
        { "t", 1, -1, false, [], [.. Enumerable.Range(0, 1000).Select(i => (byte)i)] },
        { "orders.eu-west_1", 12, 34, true, [.. Enumerable.Range(0, 300).Select(i => (byte)i)], [] },
    };

    [Theory]
    [MemberData(nameof(Messages))]
    public void WriteMessage_from_spans_writes_the_same_bytes_as_Write_of_a_MessageFrame(
        string topic, long sequence, long timestampMs, bool hasKey, byte[] key, byte[] payload)
    {
        var frame = new MessageFrame(topic, sequence, timestampMs, hasKey ? key : (ReadOnlyMemory<byte>?)null, payload);

        var fromStruct = Encode(w => FrameWriter.Write(w, frame));
        var fromSpans = Encode(w => FrameWriter.WriteMessage(w, Encoding.UTF8.GetBytes(topic), sequence, timestampMs, hasKey, key, payload));

        Hex(fromSpans).ShouldBe(Hex(fromStruct));
    }

    [Theory]
    [MemberData(nameof(Messages))]
    public void MessageFrameSize_equals_the_bytes_WriteMessage_writes(
        string topic, long sequence, long timestampMs, bool hasKey, byte[] key, byte[] payload)
    {
        var topicUtf8 = Encoding.UTF8.GetBytes(topic);

        var written = Encode(w => FrameWriter.WriteMessage(w, topicUtf8, sequence, timestampMs, hasKey, key, payload));
        var predicted = FrameWriter.MessageFrameSize(topicUtf8.Length, hasKey, key.Length, payload.Length);

        predicted.ShouldBe(written.Length);
    }

    [Fact]
    public void WriteMessage_without_key_ignores_any_key_bytes_passed()
    {
        var withoutKey = Encode(w => FrameWriter.WriteMessage(w, "t"u8, 1, 2, hasKey: false, ReadOnlySpan<byte>.Empty, [9]));

        var withIgnoredKey = Encode(w => FrameWriter.WriteMessage(w, "t"u8, 1, 2, hasKey: false, [1, 2, 3], [9]));

        Hex(withIgnoredKey).ShouldBe(Hex(withoutKey));
    }

    [Fact]
    public async Task WriteMessage_into_a_pipe_is_read_back_as_the_same_message()
    {
        byte[] key = [0x01];
        byte[] payload = [0x02, 0x03];

        var message = await RoundTripAsync(
            (PipeWriter w) => FrameWriter.WriteMessage(w, "ünï"u8, 77, 88, hasKey: true, key, payload),
            (r, f) => { var m = r.ReadMessage(f); return (m.Topic, m.Sequence, m.TimestampMs, Key: m.Key?.ToArray(), Payload: m.Payload.ToArray()); });

        message.Topic.ShouldBe("ünï");
        message.Sequence.ShouldBe(77);
        message.TimestampMs.ShouldBe(88);
        message.Key.ShouldBe(key);
        message.Payload.ShouldBe(payload);
    }
}
