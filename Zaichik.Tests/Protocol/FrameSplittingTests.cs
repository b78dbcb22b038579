using System.IO.Pipelines;
using Zaichik.Protocol;
using static Zaichik.Tests.Protocol.CodecTestHelpers;

namespace Zaichik.Tests.Protocol;

/// <summary>How the reader behaves as bytes arrive through a pipe in arbitrary pieces.</summary>
public sealed class FrameSplittingTests
{
    private static readonly byte[] PublishBytes =
        Encode(w => FrameWriter.Write(w, new PublishFrame(11, "orders", "k"u8.ToArray(), "payload"u8.ToArray())));

    private static readonly byte[] AckBytes = Encode(w => FrameWriter.Write(w, new AckFrame(11, 4096, false, Durable: true)));

    private static readonly byte[] CloseBytes = Encode(w => FrameWriter.Write(w, default(CloseFrame)));

    [Fact]
    public async Task Frame_split_byte_by_byte_is_read_once_complete()
    {
        var pipe = new FramePipe();

        var perByte = await pipe.SendInChunksAsync(PublishBytes, chunkSize: 1);

        for (var i = 0; i < PublishBytes.Length - 1; i++)
        {
            perByte[i].ShouldBeEmpty($"only {i + 1} of {PublishBytes.Length} bytes have arrived");
        }

        perByte[^1].Count.ShouldBe(1, "the last byte completes the frame");
        var publish = pipe.Reader.ReadPublish(perByte[^1][0]);
        publish.RequestId.ShouldBe(11UL);
        publish.Topic.ShouldBe("orders");
        publish.Key.ShouldNotBeNull();
        publish.Key.Value.ToArray().ShouldBe("k"u8.ToArray());
        publish.Payload.ToArray().ShouldBe("payload"u8.ToArray());
    }

    [Fact]
    public async Task Partial_frame_consumes_nothing_until_it_is_complete()
    {
        var pipe = new FramePipe();
        var unconsumed = new List<long>();

        for (var i = 0; i < PublishBytes.Length; i++)
        {
            await pipe.SendAsync(PublishBytes.AsMemory(i, 1));
            unconsumed.Add(pipe.Unconsumed);
        }

        var expected = Enumerable.Range(1, PublishBytes.Length - 1).Select(n => (long)n).Append(0).ToList();
        unconsumed.ShouldBe(expected, "every byte of an incomplete frame stays in the pipe; the whole frame leaves at once");
    }

    [Fact]
    public async Task Several_frames_sent_byte_by_byte_are_each_read_exactly_when_their_last_byte_arrives()
    {
        var stream = Concat(PublishBytes, CloseBytes, AckBytes);
        var pipe = new FramePipe();

        var perByte = await pipe.SendInChunksAsync(stream, chunkSize: 1);

        var completedAt = perByte.Select((frames, i) => (frames, i)).Where(x => x.frames.Count > 0)
            .Select(x => (Index: x.i, x.frames.Count)).ToList();
        completedAt.ShouldBe(
        [
            (PublishBytes.Length - 1, 1),
            (PublishBytes.Length + CloseBytes.Length - 1, 1),
            (stream.Length - 1, 1),
        ]);
        perByte.SelectMany(f => f).Select(f => f.Type).ShouldBe([FrameType.Publish, FrameType.Close, FrameType.Ack]);
        pipe.Reader.ReadAck(perByte[^1][0]).ShouldBe(new AckFrame(11, 4096, false, Durable: true));
        pipe.Unconsumed.ShouldBe(0);
    }

    [Fact]
    public async Task Two_frames_in_one_buffer_are_both_read()
    {
        var pipe = new FramePipe();

        var frames = await pipe.SendAsync(Concat(AckBytes, PublishBytes));

        frames.Select(f => f.Type).ShouldBe([FrameType.Ack, FrameType.Publish]);
        pipe.Reader.ReadAck(frames[0]).ShouldBe(new AckFrame(11, 4096, false, Durable: true));
        pipe.Reader.ReadPublish(frames[1]).Topic.ShouldBe("orders");
        pipe.Unconsumed.ShouldBe(0);
    }

    [Fact]
    public async Task Whole_frame_followed_by_half_of_the_next_yields_the_first_then_the_second_when_the_rest_arrives()
    {
        var pipe = new FramePipe();
        var stream = Concat(AckBytes, PublishBytes);
        var half = AckBytes.Length + (PublishBytes.Length / 2);

        var first = await pipe.SendAsync(stream.AsMemory(0, half));
        var leftAfterFirst = pipe.Unconsumed;
        var second = await pipe.SendAsync(stream.AsMemory(half));

        first.Select(f => f.Type).ShouldBe([FrameType.Ack]);
        leftAfterFirst.ShouldBe(PublishBytes.Length / 2, "the half Publish stays buffered");
        second.Select(f => f.Type).ShouldBe([FrameType.Publish]);
        pipe.Reader.ReadPublish(second[0]).Payload.ToArray().ShouldBe("payload"u8.ToArray());
        pipe.Unconsumed.ShouldBe(0);
    }

    [Fact]
    public async Task Length_prefix_split_across_flushes_is_reassembled()
    {
        var pipe = new FramePipe();

        var afterTwoBytes = await pipe.SendAsync(AckBytes.AsMemory(0, 2));
        var afterRest = await pipe.SendAsync(AckBytes.AsMemory(2));

        afterTwoBytes.ShouldBeEmpty();
        afterRest.Count.ShouldBe(1);
        pipe.Reader.ReadAck(afterRest[0]).ShouldBe(new AckFrame(11, 4096, false, Durable: true));
    }

    [Fact]
    public async Task Large_frame_spread_over_many_pipe_segments_decodes_intact()
    {
        var payload = Enumerable.Range(0, 20_000).Select(i => (byte)(i * 7)).ToArray();
        var bytes = Encode(w => FrameWriter.Write(w, new MessageFrame("big", 1, 2, null, payload)));
        var pipe = new FramePipe(options: new PipeOptions(minimumSegmentSize: 512));

        var perChunk = await pipe.SendInChunksAsync(bytes, chunkSize: 700);

        var frames = perChunk.SelectMany(f => f).ToList();
        frames.Count.ShouldBe(1);
        perChunk[^1].Count.ShouldBe(1, "the frame completes with the last chunk, not before");
        pipe.Reader.ReadMessage(frames[0]).Payload.ToArray().ShouldBe(payload);
    }
}
