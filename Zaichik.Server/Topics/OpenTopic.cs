using Zaichik.Server.Storage;

namespace Zaichik.Server.Topics;

/// <summary>
/// What a topic holds only while its log is open: the log, its committer, the compaction window, the idempotent
/// producers' window, the durable consumers' positions and the readers' cursors. A closed topic drops all of it and keeps only its name and settings, so an idle
/// topic costs a few hundred bytes and no descriptor. A subscription holds the <see cref="OpenTopic"/> it started on:
/// when the topic's storage fails and is reopened, that instance is <see cref="Retired"/> and its subscribers resubscribe.
/// </summary>
internal sealed class OpenTopic : IAsyncDisposable
{
    private readonly Lock _lock = new();
    private readonly List<TopicCursor> _cursors = [];
    private readonly HashSet<string> _connectedConsumers = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _retired = new();
    private int _runningPumps;

    public OpenTopic(TopicLog log, TopicCommitter? committer, CompactionIndex? keys, ProducerWindow producers, ConsumerPositionStore positions)
    {
        Log = log;
        Committer = committer;
        Keys = keys;
        Producers = producers;
        Positions = positions;
    }

    public TopicLog Log { get; }

    /// <summary>Null for a Memory topic, which commits nothing.</summary>
    public TopicCommitter? Committer { get; }

    /// <summary>Null when compaction is off. Guarded by the topic's gate.</summary>
    public CompactionIndex? Keys { get; }

    /// <summary>For a topic that keeps the latest value per key: its keys' newest messages, which readers consult; null otherwise.</summary>
    public LatestValueIndex? Latest { get; init; }

    /// <summary>The shared tail its caught-up subscribers follow; null for a topic that keeps the latest value per key (its readers skip superseded messages).</summary>
    public Subscriptions.TailFeed? Feed { get; init; }

    /// <summary>What the topic remembers of its idempotent producers' publishes. Guarded by the topic's gate.</summary>
    public ProducerWindow Producers { get; }

    public ConsumerPositionStore Positions { get; }

    /// <summary>
    /// What the dedup windows remember of messages the log no longer holds (see <see cref="WindowFile"/>); null for a
    /// Memory topic, whose windows start empty at every open like its log. Guarded by the topic's window lock.
    /// </summary>
    public WindowFile? Windows { get; init; }

    /// <summary>Messages below this sequence are already accounted for in <see cref="Windows"/>. Guarded by the topic's window lock.</summary>
    public long WindowsUpTo { get; set; }

    /// <summary>The consumer groups with members now, by name. Guarded by the topic's gate.</summary>
    public Dictionary<string, Subscriptions.ConsumerGroup> Groups { get; } = new(StringComparer.Ordinal);

    /// <summary>Cancelled when this storage is replaced after a failure: its subscribers must subscribe again.</summary>
    public CancellationToken Retired => _retired.Token;

    public bool IsRetired => _retired.IsCancellationRequested;

    /// <summary>The topic's retention, 0 for none.</summary>
    public long RetentionTtlMs { get; init; }

    /// <summary>
    /// What the last retention sweep found first unexpired: the sweep reads the log only when it may have expired. An
    /// immutable object, replaced whole: a sweep sets it outside the topic's gate while a subscribe reads it, and a
    /// struct of three longs could be read half old, half new.
    /// </summary>
    public RetainedMark? OldestRetained
    {
        get => Volatile.Read(ref _oldestRetained);
        set => Volatile.Write(ref _oldestRetained, value);
    }

    private RetainedMark? _oldestRetained;

    public void Retire() => _retired.Cancel();

    public TopicCursor OpenCursor(long position, long sequence)
    {
        var cursor = new TopicCursor(position, sequence);
        lock (_lock)
        {
            _cursors.Add(cursor);
        }

        return cursor;
    }

    public void CloseCursor(TopicCursor cursor)
    {
        lock (_lock)
        {
            _cursors.Remove(cursor);
        }
    }

    /// <summary>Cursors open now: one per live subscription.</summary>
    public int SubscriberCount
    {
        get
        {
            lock (_lock)
            {
                return _cursors.Count;
            }
        }
    }

    /// <summary>The reader furthest behind (its position and next sequence), or null when none reads.</summary>
    public (long Position, long Sequence)? SlowestCursor()
    {
        lock (_lock)
        {
            (long Position, long Sequence)? slowest = null;
            foreach (var cursor in _cursors)
            {
                var position = cursor.Position;
                if (slowest is null || position < slowest.Value.Position)
                {
                    slowest = (position, cursor.Sequence);
                }
            }

            return slowest;
        }
    }

    /// <summary>Marks the durable consumer <paramref name="name"/> as connected; false when it already is (it is exclusive).</summary>
    public bool TryClaimConsumer(string name)
    {
        lock (_lock)
        {
            return _connectedConsumers.Add(name);
        }
    }

    /// <summary>Whether the durable consumer <paramref name="name"/> is connected now.</summary>
    public bool IsConsumerConnected(string name)
    {
        lock (_lock)
        {
            return _connectedConsumers.Contains(name);
        }
    }

    public void ReleaseConsumer(string name)
    {
        lock (_lock)
        {
            _connectedConsumers.Remove(name);
        }
    }

    public int RunningPumps => Volatile.Read(ref _runningPumps);

    public void PumpStarted() => Interlocked.Increment(ref _runningPumps);

    public void PumpEnded() => Interlocked.Decrement(ref _runningPumps);

    /// <summary>True while anyone reads this topic: it is then never closed for idleness.</summary>
    public bool InUse => SubscriberCount > 0 || RunningPumps > 0;

    /// <summary>Commits the log and the positions, then closes everything; the caller has stopped appends.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var group in Groups.Values)
        {
            await group.DisposeAsync().ConfigureAwait(false);
        }

        Groups.Clear();
        try
        {
            if (Committer is not null)
            {
                await Committer.DisposeAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            try
            {
                Positions.Flush(flushToDisk: !Log.InMemory);
            }
            finally
            {
                Positions.Dispose();
                await Log.DisposeAsync().ConfigureAwait(false);
                _retired.Dispose();
            }
        }
    }
}

/// <summary>The first unexpired message a retention sweep found: its log address, sequence and timestamp.</summary>
internal sealed record RetainedMark(long Address, long Sequence, long TimestampMs);
