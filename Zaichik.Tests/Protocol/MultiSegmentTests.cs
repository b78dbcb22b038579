using System.Buffers;
using Zaichik.Protocol;
using static Zaichik.Tests.Protocol.CodecTestHelpers;

namespace Zaichik.Tests.Protocol;

/// <summary>Frames that straddle segments of a ReadOnlySequence go through the reader's scratch buffer.</summary>
public sealed class MultiSegmentTests
{
    private static readonly byte[] Key = [0x01, 0x02, 0x03];
    private static readonly byte[] Payload = [.. Enumerable.Range(0, 40).Select(i => (byte)i)];
    private static readonly MessageFrame Message = new("straddle", 0x0102_0304_0506_0708, 1_700_000_000_123, Key, Payload);
    private static readonly byte[] MessageBytes = Encode(w => FrameWriter.Write(w, Message));

    public static TheoryData<int> EverySplitPoint() => [.. Enumerable.Range(1, MessageBytes.Length - 1)];

    [Theory]
    [MemberData(nameof(EverySplitPoint))]
    public void Frame_straddling_two_segments_decodes_like_a_contiguous_one(int splitAt)
    {
        var sequence = Segmented(MessageBytes, splitAt);
        var reader = new FrameReader();

        var message = reader.ReadMessage(ReadSingle(reader, sequence));

        sequence.IsSingleSegment.ShouldBeFalse("the test must exercise the multi-segment path");
        AssertIsTheMessage(message);
    }

    [Fact]
    public void Frame_with_every_byte_in_its_own_segment_decodes_correctly()
    {
        var reader = new FrameReader();

        var message = reader.ReadMessage(ReadSingle(reader, OneSegmentPerByte(MessageBytes)));

        AssertIsTheMessage(message);
    }

    [Fact]
    public void Frame_straddling_segments_leaves_the_following_frame_in_the_buffer()
    {
        var hello = Encode(w => FrameWriter.Write(w, new HelloFrame(1)));
        var stream = Concat(MessageBytes, hello);
        var buffer = Segmented(stream, 10, MessageBytes.Length + 2);
        var reader = new FrameReader();

        reader.TryRead(ref buffer, out var first).ShouldBeTrue();
        AssertIsTheMessage(reader.ReadMessage(first));
        buffer.Length.ShouldBe(hello.Length, "only the Message is consumed");

        reader.TryRead(ref buffer, out var second).ShouldBeTrue();
        reader.ReadHello(second).ShouldBe(new HelloFrame(1));
        buffer.Length.ShouldBe(0);
    }

    [Fact]
    public void Scratch_buffer_grows_for_a_larger_straddling_frame()
    {
        var reader = new FrameReader();
        var small = Encode(w => FrameWriter.Write(w, new UnsubscribeFrame(1, "s")));
        var bigPayload = Enumerable.Range(0, 5000).Select(i => (byte)(i % 251)).ToArray();
        var big = Encode(w => FrameWriter.Write(w, new PublishFrame(2, "big", null, bigPayload)));

        var unsubscribe = reader.ReadUnsubscribe(ReadSingle(reader, Segmented(small, 3)));
        var publish = reader.ReadPublish(ReadSingle(reader, Segmented(big, 100, 2500)));

        unsubscribe.ShouldBe(new UnsubscribeFrame(1, "s"));
        publish.Payload.ToArray().ShouldBe(bigPayload);
    }

    [Fact]
    public void Scratch_buffer_reused_for_a_smaller_frame_holds_only_that_frame()
    {
        var reader = new FrameReader();
        var big = Encode(w => FrameWriter.Write(w, new PublishFrame(2, "big", null, new byte[3000])));
        var small = Encode(w => FrameWriter.Write(w, new AckFrame(3, 9, false)));

        reader.ReadPublish(ReadSingle(reader, Segmented(big, 1000)));
        var smallFrame = ReadSingle(reader, Segmented(small, 6));

        smallFrame.Body.Length.ShouldBe(small.Length - 5, "leftovers of the larger frame in the scratch buffer must not leak into the body");
        reader.ReadAck(smallFrame).ShouldBe(new AckFrame(3, 9, false));
    }

    [Fact]
    public void A_large_scratch_buffer_is_not_kept_once_the_next_frame_is_read()
    {
        var reader = new FrameReader();
        var big = Encode(w => FrameWriter.Write(w, new PublishFrame(2, "big", null, new byte[200_000])));
        var small = Encode(w => FrameWriter.Write(w, new AckFrame(3, 9, false)));

        reader.ReadPublish(ReadSingle(reader, Segmented(big, 100_000)));
        reader.ScratchCapacity.ShouldBeGreaterThanOrEqualTo(200_000);
        reader.ReadAck(ReadSingle(reader, Segmented(small, 6))).ShouldBe(new AckFrame(3, 9, false));

        reader.ScratchCapacity.ShouldBeLessThanOrEqualTo(64 * 1024, "a connection must not hold a large frame's buffer forever");
    }

    [Fact]
    public void Incomplete_frame_across_segments_consumes_nothing()
    {
        var reader = new FrameReader();
        var buffer = Segmented(MessageBytes[..^1], 2, 9);
        var before = buffer;

        var read = reader.TryRead(ref buffer, out _);

        read.ShouldBeFalse("one byte of the frame is still missing");
        buffer.Start.ShouldBe(before.Start, "a partial frame must not advance the buffer");
        buffer.Length.ShouldBe(before.Length);
    }

    /// <summary>Frames with the fields versions 2 and 4 added or changed.</summary>
    public static TheoryData<string, byte[]> LaterVersionFrames() => new()
    {
        { "CreateTopic", Encode(w => FrameWriter.Write(w, new CreateTopicFrame(5, "straddle", 60_000, 250, Durability.Interval, 500))) },
        { "Subscribe", Encode(w => FrameWriter.Write(w, new SubscribeFrame(6, "straddle", StartPosition.Retained, 10, "billing"))) },
        { "Subscribe from a sequence", Encode(w => FrameWriter.Write(w, new SubscribeFrame(6, "straddle", StartPosition.Sequence(0x0102_0304_0506), 10, "billing"))) },
        { "Subscribe from a time", Encode(w => FrameWriter.Write(w, new SubscribeFrame(6, "straddle", StartPosition.Time(1_700_000_000_123), 10))) },
        { "Ack", Encode(w => FrameWriter.Write(w, new AckFrame(7, 4096, false, Durable: true))) },
        { "Commit", Encode(w => FrameWriter.Write(w, new CommitFrame("straddle", long.MaxValue))) },
    };

    [Theory]
    [MemberData(nameof(LaterVersionFrames))]
    public void Fields_of_versions_2_and_4_straddling_segments_decode_like_contiguous_ones(string name, byte[] bytes)
    {
        var expected = Decode(new FrameReader(), ReadSingle(new FrameReader(), bytes));

        for (var splitAt = 1; splitAt < bytes.Length; splitAt++)
        {
            var reader = new FrameReader();
            var decoded = Decode(reader, ReadSingle(reader, Segmented(bytes, splitAt)));
            decoded.ShouldBe(expected, $"{name} split at byte {splitAt}");
        }
    }

    private static void AssertIsTheMessage(MessageFrame message)
    {
        message.Topic.ShouldBe(Message.Topic);
        message.Sequence.ShouldBe(Message.Sequence);
        message.TimestampMs.ShouldBe(Message.TimestampMs);
        message.Key.ShouldNotBeNull();
        message.Key.Value.ToArray().ShouldBe(Key);
        message.Payload.ToArray().ShouldBe(Payload);
    }
}
