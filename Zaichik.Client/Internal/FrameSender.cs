using System.Buffers;
using System.Threading.Channels;
using Zaichik.Protocol;

namespace Zaichik.Client.Internal;

/// <summary>
/// The one writer of a connection. Callers encode frames under a short lock into the pending buffer; a single
/// send loop swaps it for the empty spare and writes everything accumulated in one socket send, so a thousand
/// concurrent publishes cost a handful of system calls. While the pending buffer holds more than the threshold,
/// <see cref="WaitForRoomAsync"/> makes callers wait for the loop to take it, which bounds memory when the
/// socket is slower than the producers. The lock is never held across an await.
/// </summary>
internal sealed class FrameSender
{
    private delegate void Encoder<TFrame>(IBufferWriter<byte> output, in TFrame frame);

    private readonly Lock _lock = new();
    private readonly Stream _output;
    private readonly int _threshold;
    private readonly Channel<bool> _wakeups = Channel.CreateUnbounded<bool>(new UnboundedChannelOptions { SingleReader = true });
    private ArrayBufferWriter<byte> _pending;
    private ArrayBufferWriter<byte> _sending;
    private bool _wakeupQueued;
    private int _sentSinceCheck;
    private TaskCompletionSource? _roomAvailable;
    private Func<Exception>? _closed;

    public FrameSender(Stream output, int threshold)
    {
        _output = output;
        _threshold = threshold;
        _pending = new ArrayBufferWriter<byte>(InitialCapacity(threshold));
        _sending = new ArrayBufferWriter<byte>(InitialCapacity(threshold));
    }

    /// <summary>Completes normally after a <see cref="CompleteAsync"/>; faults when the socket fails.</summary>
    public Task Completion { get; private set; } = Task.CompletedTask;

    public void Start(CancellationToken stopping) => Completion = RunAsync(stopping);

    /// <summary>True while the pending buffer is under the threshold (or the sender is closed, which Write reports).</summary>
    public bool HasRoom
    {
        get
        {
            lock (_lock)
            {
                return _closed is not null || _pending.WrittenCount < _threshold;
            }
        }
    }

    /// <summary>Completes at once while the pending buffer is under the threshold, otherwise when the loop takes it.</summary>
    public ValueTask WaitForRoomAsync(CancellationToken cancellationToken)
    {
        Task room;
        lock (_lock)
        {
            if (_closed is not null || _pending.WrittenCount < _threshold)
            {
                // A closed sender answers on Write, where the caller expects it.
                return ValueTask.CompletedTask;
            }

            _roomAvailable ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            room = _roomAvailable.Task;
        }

        return new ValueTask(room.WaitAsync(cancellationToken));
    }

    public void Write(in CreateTopicFrame frame) => Append(frame, FrameWriter.Write);

    public void Write(in PublishFrame frame) => Append(frame, FrameWriter.Write);

    public void Write(in SubscribeFrame frame) => Append(frame, FrameWriter.Write);

    public void Write(in UnsubscribeFrame frame) => Append(frame, FrameWriter.Write);

    public void Write(in CommitFrame frame) => Append(frame, FrameWriter.Write);

    public void Write(in NackFrame frame) => Append(frame, FrameWriter.Write);

    public void Write(in CloseFrame frame) => Append(frame, FrameWriter.Write);

    public void Write(in PingFrame frame) => Append(frame, FrameWriter.Write);

    public void Write(in PongFrame frame) => Append(frame, FrameWriter.Write);

    /// <summary>Whether anything was sent since the previous call (for heartbeats).</summary>
    public bool TakeSentSinceCheck() => Interlocked.Exchange(ref _sentSinceCheck, 0) != 0;

    /// <summary>Accepts no more frames, sends what is pending, and ends the loop.</summary>
    public Task CompleteAsync(Func<Exception> closed)
    {
        Close(closed);
        return Completion;
    }

    /// <summary>Accepts no more frames and fails anyone waiting for room; the caller cancels the loop.</summary>
    public void Abort(Func<Exception> closed)
    {
        Close(closed);
        TaskCompletionSource? room;
        lock (_lock)
        {
            room = _roomAvailable;
            _roomAvailable = null;
        }

        room?.TrySetException(closed());
    }

    private void Append<TFrame>(in TFrame frame, Encoder<TFrame> encode)
    {
        bool wake;
        lock (_lock)
        {
            if (_closed is not null)
            {
                throw _closed();
            }

            encode(_pending, frame);
            wake = !_wakeupQueued;
            _wakeupQueued = true;
        }

        if (wake)
        {
            _wakeups.Writer.TryWrite(true);
        }
    }

    private void Close(Func<Exception> closed)
    {
        lock (_lock)
        {
            _closed ??= closed;
        }

        _wakeups.Writer.TryComplete();
    }

    private async Task RunAsync(CancellationToken stopping)
    {
        var wakeups = _wakeups.Reader;
        while (true)
        {
            var more = await wakeups.WaitToReadAsync(stopping).ConfigureAwait(false);
            while (wakeups.TryRead(out _))
            {
            }

            ArrayBufferWriter<byte> batch;
            TaskCompletionSource? room;
            lock (_lock)
            {
                batch = _pending;
                _pending = _sending;
                _sending = batch;
                _wakeupQueued = false;
                room = _roomAvailable;
                _roomAvailable = null;
            }

            room?.TrySetResult();
            if (batch.WrittenCount > 0)
            {
                await _output.WriteAsync(batch.WrittenMemory, stopping).ConfigureAwait(false);
                Volatile.Write(ref _sentSinceCheck, 1);
                batch.ResetWrittenCount();
                if (batch.Capacity > 4 * _threshold)
                {
                    // One huge burst should not pin its buffer for the life of the connection.
                    _sending = new ArrayBufferWriter<byte>(InitialCapacity(_threshold));
                }
            }

            if (!more)
            {
                return;
            }
        }
    }

    private static int InitialCapacity(int threshold) => Math.Min(threshold, 64 * 1024);
}
