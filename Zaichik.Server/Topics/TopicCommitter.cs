using Microsoft.Extensions.Logging;
using Zaichik.Server.Storage;

namespace Zaichik.Server.Topics;

/// <summary>
/// Commits one topic's log and its durable consumers' positions to disk. Appends and consumer Commits mark the topic
/// dirty; the committer wakes on the first mark, waits the commit interval (<c>Interval</c>) or not at all
/// (<c>Always</c>), and commits everything appended by then, then writes the positions that changed (fsynced on
/// <c>Always</c> topics). Publishes and Commits that arrive while a flush is running share the next one, which is
/// what makes <c>Always</c> a group commit. An idle topic costs no timer and no wake-up.
/// </summary>
/// <remarks>
/// On <c>Always</c> topics there is no loop: the first mark starts the commit on the marking thread (the pages are written
/// there), FasterLog's commit worker makes it durable and runs the waiting Acks, and that same thread starts the next
/// commit when more was marked meanwhile. A commit so costs one hand-over between threads rather than a wake-up of a pool
/// thread at each step.
/// </remarks>
internal sealed partial class TopicCommitter : IAsyncDisposable
{
    private static readonly TimeSpan FailureRecheckInterval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(100);

    /// <summary>How often a failed topic checks whether its disk takes writes again.</summary>
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromSeconds(1);

    /// <summary>Bytes the probe writes: two default log pages, what the log's next flush needs at least.</summary>
    private const int ProbeSize = 128 * 1024;

    private readonly TopicLog _log;
    private readonly ConsumerPositionStore _positions;
    private readonly bool _always;
    private readonly TimeSpan _delay;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _topic;
    private readonly string _directory;
    private readonly Action? _onDiskWritable;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _dirty;
    private long _dirtySince;
    private bool _positionsFailing;

    // Always topics: Idle, Committing, CommittingDirty (more was marked while committing), Failed or Stopped.
    private const int Idle = 0;
    private const int Committing = 1;
    private const int CommittingDirty = 2;
    private const int Failed = 3;
    private const int Stopped = 4;
    private int _state;
    private long _commitStarted;
    private Task _recovery = Task.CompletedTask;
    private readonly Action<Exception?, TaskCompletionSource?>? _onCommitted;
    private readonly Action<Exception>? _onWriteFailed;

    /// <param name="onDiskWritable">
    /// Called once when, after a failed commit, the topic's folder takes writes again: FasterLog stays failed after a
    /// failed write, so the topic must be reopened from its last commit to write again.
    /// </param>
    private readonly System.Diagnostics.Metrics.Histogram<double>? _flushDuration;

    public TopicCommitter(string topic, string directory, TopicLog log, ConsumerPositionStore positions, TimeSpan delay, TimeProvider time, ILogger logger, Action? onDiskWritable = null,
        System.Diagnostics.Metrics.Histogram<double>? flushDuration = null)
    {
        _flushDuration = flushDuration;
        _topic = topic;
        _directory = directory;
        _onDiskWritable = onDiskWritable;
        _log = log;
        _positions = positions;
        _always = delay == TimeSpan.Zero;
        _delay = delay;
        _time = time;
        _logger = logger;
        if (_always)
        {
            _onCommitted = Committed;
            _onWriteFailed = exception => Fail(exception);
            _log.WriteFailed += _onWriteFailed;
            _loop = Task.CompletedTask;
        }
        else
        {
            _loop = Task.Run(RunAsync);
        }
    }

    /// <summary>The last commit failed (disk full, permission lost); cleared by the next commit that succeeds.</summary>
    public Exception? LastFailure { get; private set; }

    /// <summary>Asks for a commit of everything appended so far. Cheap when the topic is already dirty.</summary>
    public void MarkDirty()
    {
        if (_always)
        {
            MarkDirtyAlways();
            return;
        }

        if (Volatile.Read(ref _dirty) == 0 && Interlocked.Exchange(ref _dirty, 1) == 0)
        {
            Volatile.Write(ref _dirtySince, _time.GetTimestamp());
            _wake.Release();
        }
    }

    /// <summary>
    /// Completes once the message with <paramref name="sequence"/> (and every one before it) is on disk. Throws
    /// <see cref="IOException"/> while commits are failing, rather than waiting for a disk that may not come back, and
    /// when the log closed without committing it.
    /// </summary>
    public async ValueTask WhenCommittedAsync(long sequence, CancellationToken cancellationToken)
    {
        while (_log.DurableSequence < sequence)
        {
            if (LastFailure is { } failure)
            {
                throw new IOException($"commit of topic '{_topic}' failed: {failure.Message}", failure);
            }

            if (_log.IsDisposed)
            {
                throw new IOException($"topic '{_topic}' closed before message {sequence} was committed");
            }

            // On Always topics an append marks itself, and a running commit is followed by one for what came meanwhile.
            if (!_always || Volatile.Read(ref _state) == Idle)
            {
                MarkDirty();
            }

            using var recheck = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

            // A failing commit may never complete the wait; look at LastFailure again every so often.
            recheck.CancelAfter(FailureRecheckInterval);
            try
            {
                await _log.WaitForDurableAsync(sequence, recheck.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_always)
        {
            // No new commit starts; one running is let finish (the log commits the rest as it closes).
            var state = Volatile.Read(ref _state);
            while (state != Stopped)
            {
                if (state is Committing or CommittingDirty)
                {
                    await Task.Delay(1, CancellationToken.None).ConfigureAwait(false);
                }
                else if (Interlocked.CompareExchange(ref _state, Stopped, state) == state)
                {
                    break;
                }

                state = Volatile.Read(ref _state);
            }

            _log.WriteFailed -= _onWriteFailed;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _recovery.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    private void MarkDirtyAlways()
    {
        while (true)
        {
            var state = Volatile.Read(ref _state);
            switch (state)
            {
                case Idle when Interlocked.CompareExchange(ref _state, Committing, Idle) == Idle:
                    Commit();
                    return;
                case Committing when Interlocked.CompareExchange(ref _state, CommittingDirty, Committing) == Committing:
                case CommittingDirty or Failed or Stopped:
                    return;
            }
        }
    }

    /// <summary>
    /// Starts the next commit (the state is <see cref="Committing"/>). When the log has nothing to commit, writes the
    /// consumers' positions instead, on the thread pool when they changed (an fsync does not belong on a connection's thread).
    /// </summary>
    private void Commit()
    {
        while (true)
        {
            try
            {
                _commitStarted = _time.GetTimestamp();
                if (_log.TryStartCommit(_onCommitted!))
                {
                    return;
                }
            }
            catch (Exception exception) when (exception is IOException or ObjectDisposedException or InvalidOperationException)
            {
                Fail(exception);
                return;
            }

            if (_positions.IsDirty)
            {
                ThreadPool.UnsafeQueueUserWorkItem(static committer => committer.Committed(null, null), this, preferLocal: false);
                return;
            }

            if (!TryFinish())
            {
                return;
            }
        }
    }

    /// <summary>
    /// The end of a commit: on FasterLog's commit worker, or on the pool for positions alone. The Acks waiting for it go
    /// from this thread when nothing more was marked meanwhile (one publish in flight: no hand-over at all); otherwise from
    /// the pool, so that the next commit, started here, writes while they are sent.
    /// </summary>
    private void Committed(Exception? failure, TaskCompletionSource? advanced)
    {
        if (failure is not null)
        {
            Fail(failure);
            return;
        }

        if (advanced is not null)
        {
            if (Volatile.Read(ref _state) == CommittingDirty)
            {
                ThreadPool.UnsafeQueueUserWorkItem(static advanced => advanced.TrySetResult(), advanced, preferLocal: false);
            }
            else
            {
                TopicLog.WakeInline(advanced);
            }
        }

        FlushPositions();
        _flushDuration?.Record(_time.GetElapsedTime(_commitStarted).TotalSeconds);
        if (LastFailure is not null)
        {
            LogRecovered(_topic);
            LastFailure = null;
        }

        if (TryFinish())
        {
            Commit();
        }
    }

    /// <summary>Leaves <see cref="Committing"/>: true when more was marked meanwhile and the next commit must start.</summary>
    private bool TryFinish()
    {
        while (true)
        {
            switch (Volatile.Read(ref _state))
            {
                case Committing when Interlocked.CompareExchange(ref _state, Idle, Committing) == Committing:
                    return false;
                case CommittingDirty when Interlocked.CompareExchange(ref _state, Committing, CommittingDirty) == CommittingDirty:
                    return true;
                case Failed or Stopped or Idle:
                    return false;
            }
        }
    }

    /// <summary>
    /// A commit failed (or the pages could not be written, after which FasterLog completes no commit): waiters hear of it
    /// at once, and the topic waits for its disk as the loop does.
    /// </summary>
    private void Fail(Exception exception)
    {
        while (true)
        {
            var state = Volatile.Read(ref _state);
            if (state is Failed or Stopped)
            {
                return;
            }

            if (Interlocked.CompareExchange(ref _state, Failed, state) == state)
            {
                break;
            }
        }

        if (LastFailure is null)
        {
            LogCommitFailed(exception, _topic);
        }

        LastFailure = exception;
        _log.WakeDurableWaiters();
        _recovery = RecoverAsync(_stop.Token);
    }

    private async Task RecoverAsync(CancellationToken cancellationToken)
    {
        await Task.Yield();
        try
        {
            if (_onDiskWritable is null)
            {
                // Try again soon: the disk may come back.
                await Task.Delay(RetryDelay, _time, cancellationToken).ConfigureAwait(false);
                if (Interlocked.CompareExchange(ref _state, Idle, Failed) == Failed)
                {
                    MarkDirty();
                }

                return;
            }

            await WaitForWritableDiskAsync(cancellationToken).ConfigureAwait(false);
            LogDiskWritable(_topic);
            _onDiskWritable();
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task RunAsync()
    {
        var cancellationToken = _stop.Token;
        try
        {
            while (true)
            {
                await _wake.WaitAsync(cancellationToken).ConfigureAwait(false);
                if (_delay > TimeSpan.Zero)
                {
                    await WaitOutIntervalAsync(cancellationToken).ConfigureAwait(false);
                }

                Volatile.Write(ref _dirty, 0);
                try
                {
                    var started = _time.GetTimestamp();
                    await _log.CommitAsync(cancellationToken).ConfigureAwait(false);
                    FlushPositions();
                    _flushDuration?.Record(_time.GetElapsedTime(started).TotalSeconds);

                    if (LastFailure is not null)
                    {
                        LogRecovered(_topic);
                        LastFailure = null;
                    }
                }
                catch (Exception exception) when (exception is not OperationCanceledException)
                {
                    if (LastFailure is null)
                    {
                        LogCommitFailed(exception, _topic);
                    }

                    LastFailure = exception;
                    _log.WakeDurableWaiters();
                    if (_onDiskWritable is null)
                    {
                        // Try again soon: the disk may come back.
                        await Task.Delay(RetryDelay, _time, cancellationToken).ConfigureAwait(false);
                        MarkDirty();
                        continue;
                    }

                    await WaitForWritableDiskAsync(cancellationToken).ConfigureAwait(false);
                    LogDiskWritable(_topic);
                    _onDiskWritable();
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Waits until the commit interval has passed since the topic became dirty: the interval counts from the first
    /// append it covers, not from when this loop got to run, and a clock that moves while the wait is being set up
    /// is seen.
    /// </summary>
    private async Task WaitOutIntervalAsync(CancellationToken cancellationToken)
    {
        var since = Volatile.Read(ref _dirtySince);
        var remaining = _delay - _time.GetElapsedTime(since);
        if (remaining <= TimeSpan.Zero)
        {
            return;
        }

        using var skip = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var delay = Task.Delay(remaining, _time, skip.Token);
        if (_time.GetElapsedTime(since) >= _delay)
        {
            // The clock passed the deadline before the timer was set: it would wait a whole interval more.
            await skip.CancelAsync().ConfigureAwait(false);
            await delay.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            cancellationToken.ThrowIfCancellationRequested();
            return;
        }

        await delay.ConfigureAwait(false);
    }

    /// <summary>
    /// Writes the durable consumers' positions that changed. A failure (no descriptor left, a damaged file) is logged and
    /// retried at the next flush: the positions stay as they were on disk, which only means a consumer may get again
    /// messages it committed; the log's own commits are not failed for it.
    /// </summary>
    private void FlushPositions()
    {
        if (!_positions.IsDirty)
        {
            return;
        }

        try
        {
            _positions.Flush(flushToDisk: _always);
            _positionsFailing = false;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            if (!_positionsFailing)
            {
                LogPositionsFailed(exception, _topic);
                _positionsFailing = true;
            }

            if (!_always)
            {
                MarkDirty();
            }
        }
    }

    /// <summary>Probes the topic's folder until a write-through write of <see cref="ProbeSize"/> bytes succeeds.</summary>
    private async Task WaitForWritableDiskAsync(CancellationToken cancellationToken)
    {
        var probe = Path.Combine(_directory, ".write-probe");
        var block = new byte[ProbeSize];
        while (true)
        {
            await Task.Delay(ProbeInterval, _time, cancellationToken).ConfigureAwait(false);
            try
            {
                using (var handle = File.OpenHandle(probe, FileMode.Create, FileAccess.Write, FileShare.None, FileOptions.WriteThrough))
                {
                    RandomAccess.Write(handle, block, 0);
                }

                File.Delete(probe);
                return;
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
            {
                try
                {
                    File.Delete(probe);
                }
                catch (Exception deleteFailure) when (deleteFailure is IOException or UnauthorizedAccessException)
                {
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic}: durable consumer positions could not be written; trying again at each flush")]
    private partial void LogPositionsFailed(Exception exception, string topic);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic}: the disk takes writes again; reopening the topic from its last commit")]
    private partial void LogDiskWritable(string topic);

    [LoggerMessage(Level = LogLevel.Error, Message = "Commit of topic {Topic} failed; publishes waiting for it get StorageFailure until a commit succeeds")]
    private partial void LogCommitFailed(Exception exception, string topic);

    [LoggerMessage(Level = LogLevel.Information, Message = "Commits of topic {Topic} succeed again")]
    private partial void LogRecovered(string topic);
}
