using System.Buffers;
using Zaichik.Client.Internal;
using Zaichik.Protocol;

namespace Zaichik.Tests.Client;

public sealed class FrameSenderTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Frames_written_while_a_send_is_in_progress_go_out_together_in_the_next_single_write()
    {
        var stream = new GatedStream();
        var sender = new FrameSender(stream, threshold: 64 * 1024);
        using var stopping = new CancellationTokenSource();
        sender.Start(stopping.Token);

        sender.Write(CommitFrame.All);
        await stream.WriteStarted(1).WaitAsync(Patience);
        var frames = Enumerable.Range(0, 50).Select(i => new PublishFrame((ulong)i, "batched", null, new byte[100])).ToList();
        foreach (var frame in frames)
        {
            sender.Write(frame);
        }

        stream.Open();
        await stream.WriteStarted(2).WaitAsync(Patience);

        stream.WriteSizes.ShouldBe([EncodedSize(CommitFrame.All), frames.Sum(EncodedSize)], "the 50 publishes should have gone out in one write");
        await stopping.CancelAsync();
    }

    [Fact]
    public async Task Writers_wait_for_room_while_the_pending_frames_exceed_the_threshold()
    {
        var stream = new GatedStream();
        var sender = new FrameSender(stream, threshold: 4096);
        using var stopping = new CancellationTokenSource();
        sender.Start(stopping.Token);
        sender.Write(CommitFrame.All);
        await stream.WriteStarted(1).WaitAsync(Patience);

        sender.WaitForRoomAsync(default).IsCompleted.ShouldBeTrue("an empty buffer has room");
        for (var i = 0; i < 5; i++)
        {
            sender.Write(new PublishFrame((ulong)i, "big", null, new byte[1000]));
        }

        var room = sender.WaitForRoomAsync(default).AsTask();
        room.IsCompleted.ShouldBeFalse("5 KB pending is over the 4 KB threshold");

        stream.Open();
        await room.WaitAsync(Patience);
        await stopping.CancelAsync();
    }

    [Fact]
    public async Task Complete_sends_what_is_pending_then_refuses_further_frames()
    {
        var stream = new GatedStream();
        stream.Open();
        var sender = new FrameSender(stream, threshold: 4096);
        sender.Start(CancellationToken.None);

        sender.Write(new CloseFrame());
        await sender.CompleteAsync(() => new InvalidOperationException("closed")).WaitAsync(Patience);

        stream.WriteSizes.Sum().ShouldBe(EncodedSize(new CloseFrame()));
        Should.Throw<InvalidOperationException>(() => sender.Write(CommitFrame.All)).Message.ShouldBe("closed");
    }

    private static int EncodedSize(CommitFrame frame)
    {
        var buffer = new ArrayBufferWriter<byte>();
        FrameWriter.Write(buffer, frame);
        return buffer.WrittenCount;
    }

    private static int EncodedSize(CloseFrame frame)
    {
        var buffer = new ArrayBufferWriter<byte>();
        FrameWriter.Write(buffer, frame);
        return buffer.WrittenCount;
    }

    private static int EncodedSize(PublishFrame frame)
    {
        var buffer = new ArrayBufferWriter<byte>();
        FrameWriter.Write(buffer, frame);
        return buffer.WrittenCount;
    }

    /// <summary>A write-only stream that records each write's size and holds every write until opened.</summary>
    private sealed class GatedStream : Stream
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly List<int> _writeSizes = [];
        private readonly List<TaskCompletionSource> _started = [];

        public List<int> WriteSizes
        {
            get
            {
                lock (_writeSizes)
                {
                    return [.. _writeSizes];
                }
            }
        }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public void Open() => _gate.TrySetResult();

        /// <summary>Completes once the <paramref name="count"/>th write has begun.</summary>
        public Task WriteStarted(int count)
        {
            lock (_writeSizes)
            {
                while (_started.Count < count)
                {
                    _started.Add(new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                }

                return _started[count - 1].Task;
            }
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            int count;
            lock (_writeSizes)
            {
                _writeSizes.Add(buffer.Length);
                count = _writeSizes.Count;
            }

            lock (_writeSizes)
            {
                while (_started.Count < count)
                {
                    _started.Add(new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                }

                _started[count - 1].TrySetResult();
            }

            await _gate.Task.WaitAsync(cancellationToken);
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
