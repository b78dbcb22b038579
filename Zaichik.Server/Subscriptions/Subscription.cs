using Microsoft.Extensions.Logging;
using Zaichik.Protocol;
using Zaichik.Server.Networking.Internal;
using Zaichik.Server.Storage;
using Zaichik.Server.Subscriptions.Internal;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Subscriptions;

/// <summary>
/// One connection's subscription to one topic. A single pump reads the topic's log from the start address
/// onwards (retained records and live ones come from the same iterator, so there is no seam to lose or repeat
/// a message at), skips expired records, and delivers as many messages as the connection's
/// <see cref="DeliveryWindow"/> allows, a batch per flush.
/// </summary>
internal sealed partial class Subscription : IAsyncDisposable
{
    /// <summary>Most messages staged for one flush.</summary>
    private const int MaxBatchMessages = 512;

    /// <summary>Stop staging once this many bytes wait for one flush.</summary>
    private const int MaxBatchBytes = 64 * 1024;

    private readonly Topic _topic;
    private readonly DeliveryWindow _window;
    private readonly ConnectionWriter _writer;
    private readonly ILogger _logger;
    private readonly TopicCursor _cursor;
    private readonly LogScanner _iterator;
    private readonly CancellationTokenSource _stop = new();
    private readonly PooledBufferWriter _staging = new();
    private readonly Lock _pendingLock = new();
    private readonly Queue<long> _uncommitted = new();
    private readonly long[] _stagedOffsets;
    private readonly FragmentAssembler _fragments = new();
    private readonly string? _durableName;
    private readonly long _skipThrough;
    private Task _pump = Task.CompletedTask;
    private int _disposed;
    private CancellationTokenRegistration _retirement;

    /// <param name="durableName">The durable consumer this subscription is, or null.</param>
    /// <param name="skipThrough">Messages at or below this offset are not delivered (a durable consumer's last commit); -1 for none.</param>
    public Subscription(Topic topic, long startAddress, int prefetch, DeliveryWindow window, ConnectionWriter writer, ILogger logger, string? durableName = null, long skipThrough = -1)
    {
        _durableName = durableName;
        _skipThrough = skipThrough;
        _topic = topic;
        Prefetch = prefetch;
        _window = window;
        _writer = writer;
        _logger = logger;
        _cursor = topic.OpenCursor(startAddress);
        _iterator = topic.Log.Tail(startAddress);
        _stagedOffsets = new long[Math.Min(prefetch, MaxBatchMessages)];
    }

    public Topic Topic => _topic;

    public int Prefetch { get; }

    /// <summary>Delivered messages not yet committed.</summary>
    public int Uncommitted
    {
        get
        {
            lock (_pendingLock)
            {
                return _uncommitted.Count;
            }
        }
    }

    /// <summary>Starts delivering. Called once, after the Subscribe Ack has been written.</summary>
    public void Start() => _pump = Task.Run(CountedPumpAsync);

    /// <summary>The durable consumer name, or null for an ordinary subscription.</summary>
    public string? DurableName => _durableName;

    /// <summary>Commits every delivered message up to and including <paramref name="offset"/>.</summary>
    public void CommitUpTo(long offset)
    {
        var committed = 0;
        var last = -1L;
        lock (_pendingLock)
        {
            while (_uncommitted.TryPeek(out var pending) && pending <= offset)
            {
                last = _uncommitted.Dequeue();
                committed++;
            }
        }

        Committed(committed, last);
    }

    /// <summary>Commits every delivered message.</summary>
    public void CommitAll()
    {
        int committed;
        var last = -1L;
        lock (_pendingLock)
        {
            committed = _uncommitted.Count;
            while (_uncommitted.TryDequeue(out var pending))
            {
                last = pending;
            }
        }

        Committed(committed, last);
    }

    /// <summary>Calls <paramref name="callback"/> if the topic is retired while this subscription lives.</summary>
    public void WhenTopicRetired(Action callback) =>
        _retirement = _topic.Retired.Register(static state => ((Action)state!)(), callback);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _retirement.Dispose();

        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _pump.ConfigureAwait(false);
        }
        finally
        {
            // Messages still uncommitted leave the connection's window with the subscription. For a durable consumer
            // they stay uncommitted: it receives them again when it comes back.
            int abandoned;
            lock (_pendingLock)
            {
                abandoned = _uncommitted.Count;
                _uncommitted.Clear();
            }

            _window.Release(abandoned);
            if (_durableName is not null)
            {
                _topic.ReleaseConsumer(_durableName);
            }

            _iterator.Dispose();
            _topic.CloseCursor(_cursor);
            _staging.Dispose();
            _fragments.Dispose();
            _stop.Dispose();
        }
    }

    private void Committed(int count, long lastOffset)
    {
        if (count == 0)
        {
            return;
        }

        if (_durableName is not null)
        {
            _topic.ConsumerPositions.Save(_durableName, lastOffset);
        }

        _window.Release(count);
    }

    /// <summary>The pump, counted on its topic while it runs, so that a pump outliving its subscription can be found.</summary>
    private async Task CountedPumpAsync()
    {
        _topic.PumpStarted();
        try
        {
            await PumpAsync().ConfigureAwait(false);
        }
        finally
        {
            _topic.PumpEnded();
        }
    }

    private async Task PumpAsync()
    {
        var cancellationToken = _stop.Token;
        try
        {
            while (true)
            {
                var granted = _window.TryReserve(Prefetch, _stagedOffsets.Length);
                if (granted == 0)
                {
                    await _window.WaitForRoomAsync(Prefetch, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                var (delivered, caughtUp) = Stage(granted);
                _window.Release(granted - delivered);
                if (delivered > 0)
                {
                    // Recorded before the write, so a Commit racing the delivery always finds its offsets.
                    lock (_pendingLock)
                    {
                        for (var i = 0; i < delivered; i++)
                        {
                            _uncommitted.Enqueue(_stagedOffsets[i]);
                        }
                    }
                }

                if (_staging.WrittenCount > 0)
                {
                    var sent = await _writer.WriteAsync(_staging.WrittenMemory, cancellationToken).ConfigureAwait(false);
                    _staging.Reset();
                    if (!sent)
                    {
                        return;
                    }
                }

                if (caughtUp && !await _iterator.WaitAsync(cancellationToken).ConfigureAwait(false))
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception exception)
        {
            LogPumpFailed(exception, _topic.Name);
        }
    }

    /// <summary>
    /// Encodes up to <paramref name="budget"/> unexpired messages into the staging buffer. Returns how many, and
    /// whether the iterator ran out (of records, or of records already in memory) before the budget did.
    /// </summary>
    private unsafe (int Delivered, bool CaughtUp) Stage(int budget)
    {
        var nowMs = _topic.NowMs;
        var delivered = 0;
        while (delivered < budget && _staging.WrittenCount < MaxBatchBytes)
        {
            if (!_iterator.UnsafeGetNext(out var entry, out var length, out var address, out var nextAddress))
            {
                return (delivered, true);
            }

            try
            {
                if (StageEntry(new ReadOnlySpan<byte>(entry, length), address, nowMs, out var offset))
                {
                    _stagedOffsets[delivered++] = offset;
                }
            }
            finally
            {
                _iterator.UnsafeRelease();
            }

            _cursor.Position = nextAddress;
        }

        return (delivered, false);
    }

    /// <summary>
    /// Stages the message an entry completes, if any: a Whole record, or the last fragment of a split message.
    /// Expired messages, fragments whose First entry was not seen (a subscription that started inside a split
    /// message, or whose First had expired) and unreadable entries are skipped.
    /// </summary>
    private bool StageEntry(ReadOnlySpan<byte> entry, long address, long nowMs, out long offset)
    {
        offset = address;
        if (!LogRecord.TryRead(entry, out var record))
        {
            LogUnreadableRecord(_topic.Name, address, entry.Length);
            _fragments.Reset();
            return false;
        }

        switch (record.Kind)
        {
            case LogRecordKind.Whole:
                AbandonUnfinishedMessage(address);
                if (address <= _skipThrough || _topic.IsExpired(record.TimestampMs, nowMs))
                {
                    return false;
                }

                FrameWriter.WriteMessage(_staging, _topic.NameUtf8, address, record.TimestampMs, record.HasKey, record.Key, record.Part);
                return true;

            case LogRecordKind.First:
                AbandonUnfinishedMessage(address);
                if (address > _skipThrough && !_topic.IsExpired(record.TimestampMs, nowMs))
                {
                    _fragments.Begin(address, record.TimestampMs, record.HasKey, record.Key, record.PayloadLength, record.Part);
                }

                return false;

            default:
                if (!_fragments.InProgress || !_fragments.Append(record.Part))
                {
                    return false;
                }

                var staged = !_topic.IsExpired(_fragments.TimestampMs, nowMs);
                if (staged)
                {
                    FrameWriter.WriteMessage(_staging, _topic.NameUtf8, _fragments.Offset, _fragments.TimestampMs, _fragments.HasKey, _fragments.Key, _fragments.Payload);
                    offset = _fragments.Offset;
                }

                _fragments.Reset();
                return staged;
        }
    }

    /// <summary>A new message began before the previous split one was complete: its tail was never written (a crash mid-append).</summary>
    private void AbandonUnfinishedMessage(long address)
    {
        if (_fragments.InProgress)
        {
            LogIncompleteMessage(_topic.Name, _fragments.Offset, address);
            _fragments.Reset();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipped an incomplete split message in topic {Topic} at {Offset}; the next message starts at {Next}")]
    private partial void LogIncompleteMessage(string topic, long offset, long next);

    [LoggerMessage(Level = LogLevel.Error, Message = "Delivery of topic {Topic} stopped")]
    private partial void LogPumpFailed(Exception exception, string topic);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipped an unreadable record in topic {Topic} at {Address} ({Length} bytes)")]
    private partial void LogUnreadableRecord(string topic, long address, int length);
}
