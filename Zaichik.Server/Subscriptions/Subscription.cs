using Microsoft.Extensions.Logging;
using Zaichik.Protocol;
using Zaichik.Server.Sessions.Internal;
using Zaichik.Server.Storage;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Subscriptions;

/// <summary>
/// One connection's subscription to one topic. A single pump reads the topic's log from the start point onwards
/// (retained messages and live ones come from the same reader, so there is no seam to lose or repeat a message at),
/// skips expired messages, and delivers as many as the connection's <see cref="DeliveryWindow"/> allows, a batch per
/// flush. Messages carry their sequence; a Commit names the last sequence processed.
/// </summary>
internal sealed partial class Subscription : IAsyncDisposable
{
    /// <summary>Most messages staged for one flush.</summary>
    private const int MaxBatchMessages = 512;

    /// <summary>Stop staging once this many bytes wait for one flush.</summary>
    private const int MaxBatchBytes = 64 * 1024;

    /// <summary>
    /// Least prefetch with which a subscription with explicit acks follows the topic's shared tail (<see cref="TailFeed"/>)
    /// once caught up; with less it would be detached at almost every batch for want of room.
    /// </summary>
    internal const int MinFeedPrefetch = 256;

    private readonly Topic _topic;
    private readonly OpenTopic _storage;
    private readonly DeliveryWindow _window;
    private readonly ConnectionWriter _writer;
    private readonly ILogger _logger;
    private readonly TopicCursor? _cursor;
    private LogReader? _reader;
    private readonly TailFeed? _feed;
    private readonly Lock _feedLock = new();
    private bool _onFeed;
    private long _feedNext;
    private long _feedNextAddress;
    private TaskCompletionSource? _detached;
    private Task<bool>? _feedWrite;
    private readonly ConsumerGroup? _group;
    private readonly GroupMember? _member;
    private readonly CancellationTokenSource _stop = new();
    private readonly PooledBufferWriter _staging = new();
    private readonly Lock _pendingLock = new();
    private readonly Queue<long> _uncommitted = new();
    private readonly long[] _stagedSequences;
    private readonly string? _durableName;
    private Task _pump = Task.CompletedTask;
    private long _positionVersion;
    private long _messagesOut;
    private long _bytesOut;
    private int _disposed;
    private CancellationTokenRegistration _retirement;

    /// <param name="durableName">The durable consumer this subscription is, or null.</param>
    /// <param name="ackPolicy">None: deliveries are not counted in <paramref name="window"/> and need no Commit; a durable consumer's position moves as they are written.</param>
    public Subscription(
        Topic topic, SubscriptionStart start, int prefetch, DeliveryWindow window, ConnectionWriter writer, ILogger logger, string? durableName = null,
        AckPolicy ackPolicy = AckPolicy.Explicit)
    {
        AckPolicy = ackPolicy;
        _topic = topic;
        _storage = start.Storage;
        _reader = start.Reader;
        _cursor = start.Cursor;
        StartSequence = start.StartSequence;
        _durableName = durableName;
        Prefetch = prefetch;
        _window = window;
        _writer = writer;
        _logger = logger;
        _stagedSequences = new long[ackPolicy == AckPolicy.None ? MaxBatchMessages : Math.Min(prefetch, MaxBatchMessages)];
        _feed = ackPolicy == AckPolicy.None || prefetch >= MinFeedPrefetch ? start.Storage.Feed : null;
    }

    /// <summary>A member of a consumer group: the group's pump delivers, and commits go to the group.</summary>
    public Subscription(Topic topic, OpenTopic storage, ConsumerGroup group, GroupMember member, long startSequence, DeliveryWindow window, ConnectionWriter writer, ILogger logger)
    {
        _topic = topic;
        _storage = storage;
        _group = group;
        _member = member;
        StartSequence = startSequence;
        Prefetch = member.Prefetch;
        _window = window;
        _writer = writer;
        _logger = logger;
        _stagedSequences = [];
    }

    public Topic Topic => _topic;

    /// <summary>The consumer group this subscription is a member of, or null (also for a private group).</summary>
    public string? GroupName => _group is { } group && !ConsumerGroup.IsPrivate(group.Name) ? group.Name : null;

    /// <summary>Whether deliveries are tracked one by one and redelivered: a group member, or a subscription with AckWait or MaxDeliver of its own.</summary>
    public bool Redelivers => _group is not null;

    public int Prefetch { get; }

    /// <summary>Whether deliveries wait for Commit.</summary>
    public AckPolicy AckPolicy { get; }

    /// <summary>The sequence this subscription starts at (the Subscribe Ack carries it).</summary>
    public long StartSequence { get; }

    /// <summary>Delivered messages not yet committed.</summary>
    public int Uncommitted
    {
        get
        {
            if (_group is not null)
            {
                return _group.InFlight(_member!);
            }

            lock (_pendingLock)
            {
                return _uncommitted.Count;
            }
        }
    }

    /// <summary>Starts delivering. Called once, after the Subscribe Ack has been written.</summary>
    public void Start()
    {
        if (_group is not null)
        {
            _group.Start(_member!);
        }
        else
        {
            _pump = Task.Run(CountedPumpAsync);
        }
    }

    /// <summary>The durable consumer name, or null for an ordinary subscription.</summary>
    public string? DurableName => _durableName;

    /// <summary>Messages this subscription delivered.</summary>
    public long MessagesOut => _member?.MessagesOut ?? Volatile.Read(ref _messagesOut);

    /// <summary>Bytes of the Message frames this subscription delivered.</summary>
    public long BytesOut => _member?.BytesOut ?? Volatile.Read(ref _bytesOut);

    /// <summary>Commits every delivered message up to and including <paramref name="sequence"/>.</summary>
    public void CommitUpTo(long sequence)
    {
        if (_group is not null)
        {
            GroupCommitted(_group.CommitUpTo(_member!, sequence));
            return;
        }

        var committed = 0;
        var last = -1L;
        lock (_pendingLock)
        {
            while (_uncommitted.TryPeek(out var pending) && pending <= sequence)
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
        if (_group is not null)
        {
            GroupCommitted(_group.CommitUpTo(_member!, null));
            return;
        }

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

    /// <summary>Commits one delivered message of a consumer group (whichever member it is in flight to). Group members only.</summary>
    public void CommitOne(long sequence) => GroupCommitted(_group!.CommitOne(sequence));

    /// <summary>Gives back one message in flight to this group member, for redelivery after <paramref name="delayMs"/>; false when it is not in flight to it.</summary>
    public bool Nack(long sequence, uint delayMs) => _group!.Nack(_member!, sequence, delayMs);

    private void GroupCommitted(long version)
    {
        if (version != 0)
        {
            Volatile.Write(ref _positionVersion, version);
        }
    }

    /// <summary>
    /// Completes once the position this durable consumer's last Commit stored is as durable as the topic's messages (on
    /// an Always topic: fsynced). Called on the connection's read loop, like the Commits.
    /// </summary>
    public Task WhenPositionDurableAsync() =>
        Volatile.Read(ref _positionVersion) is var version && version == 0 ? Task.CompletedTask
        : _group is not null ? _topic.WhenGroupStateDurableAsync(_storage, version)
        : _topic.WhenConsumerPositionDurableAsync(_storage, version);

    /// <summary>Calls <paramref name="callback"/> if the storage this subscription reads is retired while it lives.</summary>
    public void WhenTopicRetired(Action callback) =>
        _retirement = _storage.Retired.Register(static state => ((Action)state!)(), callback);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _retirement.Dispose();
        if (_group is not null)
        {
            try
            {
                await _topic.LeaveGroupAsync(_storage, _group, _member!).ConfigureAwait(false);
            }
            finally
            {
                _staging.Dispose();
                _stop.Dispose();
            }

            return;
        }

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
            _reader?.Dispose();
            _topic.Unsubscribed(_storage, _cursor!, _durableName);
            _staging.Dispose();
            _stop.Dispose();
        }
    }

    private void Committed(int count, long lastSequence)
    {
        if (count == 0)
        {
            return;
        }

        if (_durableName is not null)
        {
            _positionVersion = _topic.CommitConsumer(_storage, _durableName, lastSequence);
        }

        _window.Release(count);
    }

    /// <summary>The pump, counted on its topic while it runs, so that a pump outliving its subscription can be found.</summary>
    private async Task CountedPumpAsync()
    {
        _storage.PumpStarted();
        try
        {
            await PumpAsync().ConfigureAwait(false);
        }
        finally
        {
            _storage.PumpEnded();
        }
    }

    private async Task PumpAsync()
    {
        var cancellationToken = _stop.Token;
        try
        {
            var explicitAcks = AckPolicy == AckPolicy.Explicit;
            while (true)
            {
                var granted = explicitAcks ? _window.TryReserve(Prefetch, _stagedSequences.Length) : _stagedSequences.Length;
                if (granted == 0)
                {
                    await _window.WaitForRoomAsync(Prefetch, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                var (delivered, caughtUp) = Stage(granted);
                if (explicitAcks)
                {
                    _window.Release(granted - delivered);
                }

                if (delivered > 0 && explicitAcks)
                {
                    // Recorded before the write, so a Commit racing the delivery always finds its sequences.
                    lock (_pendingLock)
                    {
                        for (var i = 0; i < delivered; i++)
                        {
                            _uncommitted.Enqueue(_stagedSequences[i]);
                        }
                    }
                }

                _cursor!.MoveTo(_reader!.Position, _reader.LastSequence + 1);
                if (_staging.WrittenCount > 0)
                {
                    _topic.Counters.Delivered(delivered, _staging.WrittenCount);
                    Volatile.Write(ref _messagesOut, _messagesOut + delivered);
                    Volatile.Write(ref _bytesOut, _bytesOut + _staging.WrittenCount);
                    var sent = await _writer.WriteAsync(_staging.WrittenMemory, cancellationToken).ConfigureAwait(false);
                    _staging.Reset();
                    if (!sent)
                    {
                        return;
                    }

                    if (!explicitAcks && _durableName is not null && delivered > 0)
                    {
                        // No Commit will come: the batch written to the connection is the consumer's position.
                        Volatile.Write(ref _positionVersion, _topic.CommitConsumer(_storage, _durableName, _stagedSequences[delivered - 1]));
                    }
                }

                if (!caughtUp)
                {
                    continue;
                }

                if (_feed is not null && await FollowFeedAsync(_feed, cancellationToken).ConfigureAwait(false))
                {
                    // Back from the shared tail: what it wrote last is written, and a reader goes on after it.
                    if (_writer.IsClosed)
                    {
                        return;
                    }

                    continue;
                }

                if (!await _reader!.WaitAsync(cancellationToken).ConfigureAwait(false))
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
    /// Caught up with the tail: attaches to the topic's shared tail and lets go of the log reader until the feed detaches
    /// this subscription, then opens a reader at the first message the feed did not deliver. False (and nothing changed)
    /// when the feed does not take it now: a message arrived meanwhile, or tracing wants each delivery seen.
    /// </summary>
    private async ValueTask<bool> FollowFeedAsync(TailFeed feed, CancellationToken cancellationToken)
    {
        if (Diagnostics.ServerMetrics.Activities.HasListeners())
        {
            return false;
        }

        var reader = _reader!;
        var next = Math.Max(reader.LastSequence + 1, StartSequence);
        var detached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_feedLock)
        {
            _feedNext = next;
            _feedNextAddress = reader.Position;
            _detached = detached;
            _feedWrite = null;
            _onFeed = true;
        }

        if (!feed.TryAttach(this, next))
        {
            lock (_feedLock)
            {
                _onFeed = false;
            }

            return false;
        }

        reader.Dispose();
        _reader = null;
        try
        {
            await detached.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            lock (_feedLock)
            {
                if (_onFeed)
                {
                    _onFeed = false;
                    feed.Detach(this);
                }
            }

            throw;
        }

        if (_feedWrite is { } pending)
        {
            await pending.ConfigureAwait(false);
        }

        _reader = _storage.Log.OpenReader(_feedNextAddress, _feedNext);
        return true;
    }

    /// <summary>
    /// Called by the feed's dispatcher with each batch while this subscription is attached: writes the messages of
    /// <paramref name="slice"/> it has not had as one write, or detaches when it cannot take them in order now.
    /// </summary>
    /// <remarks>
    /// It runs on the feed's dispatcher, a thread-pool work item, where an exception would end the process: whatever
    /// goes wrong here is logged and costs this subscription its place on the feed (its pump reads the log again, or ends).
    /// </remarks>
    internal void DeliverFromFeed(FeedSlice slice, long nowMs)
    {
        try
        {
            DeliverFromFeedCore(slice, nowMs);
        }
        catch (Exception exception)
        {
            LogFeedDeliveryFailed(exception, _topic.Name);
            LeaveFeed();
        }
    }

    private void DeliverFromFeedCore(FeedSlice slice, long nowMs)
    {
        lock (_feedLock)
        {
            if (!_onFeed)
            {
                return;
            }

            var first = slice.From;
            while (first < slice.To && slice[first].Sequence < _feedNext)
            {
                first++;
            }

            if (first == slice.To)
            {
                return;
            }

            // Timestamps only grow: when the first is not expired, none is. A gap (the feed dropped what it could not
            // hold) or an expired message is left to a log reader, as is tracing each delivery.
            if (slice[first].Sequence != _feedNext || _topic.IsExpired(slice[first].TimestampMs, nowMs) || Diagnostics.ServerMetrics.Activities.HasListeners())
            {
                DetachLocked();
                return;
            }

            var count = slice.To - first;
            var explicitAcks = AckPolicy == AckPolicy.Explicit;
            if (explicitAcks)
            {
                count = _window.TryReserve(Prefetch, count);
                if (count == 0)
                {
                    DetachLocked();
                    return;
                }
            }

            // A write still under way (a slow reader, or a reply being flushed) is not queued behind: the log serves it.
            if (!_writer.TryEnter())
            {
                if (explicitAcks)
                {
                    _window.Release(count);
                }

                DetachLocked();
                return;
            }

            var last = first + count - 1;
            if (explicitAcks)
            {
                // Recorded before the write, so a Commit racing the delivery always finds its sequences.
                lock (_pendingLock)
                {
                    for (var i = first; i <= last; i++)
                    {
                        _uncommitted.Enqueue(slice[i].Sequence);
                    }
                }
            }

            var frames = slice.Frames(first, last);
            _topic.Counters.Delivered(count, frames.Length);
            Volatile.Write(ref _messagesOut, _messagesOut + count);
            Volatile.Write(ref _bytesOut, _bytesOut + frames.Length);
            var write = _writer.WriteEnteredAsync(frames, _stop.Token);
            _feedNext = slice[last].Sequence + 1;
            _feedNextAddress = slice[last].NextAddress;
            _cursor!.MoveTo(_feedNextAddress, _feedNext);
            if (!explicitAcks && _durableName is not null)
            {
                // No Commit will come: what is written to the connection is the consumer's position.
                Volatile.Write(ref _positionVersion, _topic.CommitConsumer(_storage, _durableName, slice[last].Sequence));
            }

            if (!write.IsCompleted)
            {
                _feedWrite = write.AsTask();
            }
            else if (!write.IsCompletedSuccessfully || !write.Result)
            {
                // Not written: the peer is gone, or this subscription stopped (its token cancelled the write).
                ObserveFailure(write);
                DetachLocked();
                return;
            }

            if (first + count < slice.To)
            {
                DetachLocked();
            }
        }
    }

    /// <summary>Detaches from the shared tail if attached: the feed dropped messages this subscription has not had.</summary>
    internal void LeaveFeed()
    {
        lock (_feedLock)
        {
            if (_onFeed)
            {
                DetachLocked();
            }
        }
    }

    private void DetachLocked()
    {
        _onFeed = false;
        _feed!.Detach(this);
        _detached!.TrySetResult();
    }

    /// <summary>
    /// Encodes up to <paramref name="budget"/> unexpired messages into the staging buffer. Returns how many, and
    /// whether the reader ran out (of messages, or of messages readable now) before the budget did.
    /// </summary>
    private (int Delivered, bool CaughtUp) Stage(int budget)
    {
        var reader = _reader!;
        var nowMs = _topic.NowMs;
        var delivered = 0;
        while (delivered < budget && _staging.WrittenCount < MaxBatchBytes)
        {
            if (!reader.TryRead(out var message))
            {
                return (delivered, true);
            }

            try
            {
                if (!_topic.IsExpired(message.TimestampMs, nowMs))
                {
                    FrameWriter.WriteMessage(_staging, _topic.NameUtf8, message.Sequence, message.TimestampMs, message.HasKey, message.Key, message.Payload, message.Headers);
                    _stagedSequences[delivered++] = message.Sequence;
                    if (Diagnostics.ServerMetrics.Activities.HasListeners())
                    {
                        Diagnostics.ServerActivities.Delivered(_topic.Name, message.Sequence, _durableName, message.Headers);
                    }
                }
            }
            finally
            {
                reader.Release();
            }
        }

        return (delivered, false);
    }

    /// <summary>Takes the exception of a write that failed or was cancelled, so that it is never left unobserved.</summary>
    private static void ObserveFailure(ValueTask<bool> write)
    {
        if (!write.IsCompletedSuccessfully)
        {
            _ = write.AsTask().Exception;
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Delivery of topic {Topic} from the shared tail failed; the subscription reads the log instead")]
    private partial void LogFeedDeliveryFailed(Exception exception, string topic);

    [LoggerMessage(Level = LogLevel.Error, Message = "Delivery of topic {Topic} stopped")]
    private partial void LogPumpFailed(Exception exception, string topic);
}
