using System.Text;
using Microsoft.Extensions.Logging;
using Zaichik.Protocol;
using Zaichik.Server.Sessions.Internal;
using Zaichik.Server.Storage;
using Zaichik.Server.Subscriptions;

namespace Zaichik.Server.Topics;

/// <summary>
/// One topic: its name and settings for as long as the broker runs, and, while it is in use, its open storage
/// (<see cref="OpenTopic"/>). Its lifecycle is one state machine, driven under one gate: <see cref="TopicState.Closed"/>
/// (settings only, no file open), <see cref="TopicState.Open"/> (log, committer, compaction window, positions),
/// <see cref="TopicState.Quarantined"/> (its files cannot be served; every other topic is). A topic opens on its first
/// publish or subscribe and closes when it has been idle for a while; a topic whose disk failed is reopened as a restart
/// would reopen it.
/// </summary>
/// <remarks>
/// Publishes are serialised by the gate so that timestamps never go backwards in log order (which lets retention treat
/// expired records as a prefix), sequences are handed out in log order, and an idempotent producer's repeat check, a
/// key's duplicate check and the append are atomic: a publish sent again on a new connection while the original is
/// still being appended finds it stored. The gate is also what keeps the topic open while a publish is in progress.
/// </remarks>
internal sealed partial class Topic : IAsyncDisposable
{
    private readonly TopicContext _context;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);

    // Held while the window file is written (outside the gate, by a sweep) and while the topic's files are copied.
    private readonly SemaphoreSlim _windowsLock = new(1, 1);
    private readonly Action<Topic>? _onStorageRecovered;
    private OpenTopic? _open;
    private string? _quarantine;
    private long _lastUsedMs;
    private long _lastTimestampMs;
    private Task _commitReplicated = Task.CompletedTask;
    private GroupStateReplicator? _groupReplicator;
    private long _closedOldestTimestampMs = long.MaxValue;

    // The newest timestamp of a record from an idempotent producer, long.MaxValue while unknown (before the first open):
    // a reopen reads the log to rebuild the producer window only when such a record can be within the window.
    private long _newestProducerRecordMs = long.MaxValue;

    /// <param name="onStorageRecovered">Called when the disk takes writes again after a failed commit (see <see cref="TopicCommitter"/>).</param>
    public Topic(string name, string directory, TopicSettings settings, TopicContext context, Action<Topic>? onStorageRecovered = null)
    {
        Name = name;
        NameUtf8 = Encoding.UTF8.GetBytes(name);
        Directory = directory;
        Settings = settings.Resolve(Durability.Interval, DefaultCommitInterval);
        _context = context;
        _logger = context.Loggers.CreateLogger<Topic>();
        _onStorageRecovered = onStorageRecovered;
        _lastUsedMs = NowMs;
    }

    /// <summary>Used only when a topic is built with unresolved settings (tests); the registry always resolves them.</summary>
    private static readonly TimeSpan DefaultCommitInterval = TimeSpan.FromMilliseconds(100);

    public string Name { get; }

    /// <summary>The name as sent in every Message frame, encoded once.</summary>
    public byte[] NameUtf8 { get; }

    public string Directory { get; }

    public TopicSettings Settings { get; }

    /// <summary>The first and last sequence and message count when the topic last closed; null before its first close.</summary>
    public (long First, long Last, long Count)? ClosedSequences { get; private set; }

    /// <summary>What the topic has stored, dropped and delivered since the broker started.</summary>
    public TopicCounters Counters { get; } = new();

    public TopicState State => _quarantine is not null ? TopicState.Quarantined : Volatile.Read(ref _open) is null ? TopicState.Closed : TopicState.Open;

    /// <summary>Why the topic is quarantined, or null.</summary>
    public string? QuarantineReason => _quarantine;

    /// <summary>The open storage, or null while the topic is closed.</summary>
    public OpenTopic? Current => Volatile.Read(ref _open);

    /// <summary>When the topic was last published to, subscribed to or committed on (Unix ms).</summary>
    public long LastUsedMs => Volatile.Read(ref _lastUsedMs);

    public long NowMs => _context.Time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>The clock every timing decision of this topic reads (tests move a fake one).</summary>
    public TimeProvider Time => _context.Time;

    /// <summary>
    /// True when a record stamped <paramref name="timestampMs"/> must no longer be delivered. Never on a topic that keeps
    /// the latest value per key: its newest values outlive the TTL, and its readers step over what expired (<see cref="LatestValueIndex"/>).
    /// </summary>
    public bool IsExpired(long timestampMs, long nowMs) =>
        Settings.HasRetention && !Settings.KeepLatestPerKey && nowMs - timestampMs >= Settings.RetentionTtlMs;

    /// <summary>
    /// Stores one message, opening the topic first if it is closed, unless its producer's publish is remembered as
    /// stored (the outcome then names the original, not a duplicate) or its key is inside the compaction window (the
    /// outcome is a duplicate). Completes synchronously unless the topic must open, the log's in-memory tail is full,
    /// another publish holds the gate, the sequence bound must be raised, or the message is larger than a log page.
    /// </summary>
    /// <param name="headers">The message's header block, stored and delivered unchanged; empty for none.</param>
    /// <param name="producer">The idempotent producer and its number for this publish, or <see cref="ProducerStamp.None"/>.</param>
    /// <exception cref="TopicException">With <see cref="ErrorCode.StorageFailure"/> while the topic's commits fail, or it cannot be opened.</exception>
    /// <param name="timestampMs">
    /// The message's timestamp (Unix ms), or 0 for now. A cluster node applies the leader's stamp, so that every node's key
    /// window and retention judge the message alike; a stamp older than the topic's newest is raised to it.
    /// </param>
    public ValueTask<PublishOutcome> PublishAsync(
        ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte> payload, ReadOnlyMemory<byte> headers, ProducerStamp producer, CancellationToken cancellationToken,
        long timestampMs = 0) =>
        _gate.Wait(0)
            ? PublishHoldingGate(new Publish(key, payload, headers, producer, timestampMs), cancellationToken)
            : PublishWhenGateOpensAsync(new Publish(key, payload, headers, producer, timestampMs), cancellationToken);

    /// <summary>True when the message <paramref name="outcome"/> names (for a duplicate, the original) is on disk.</summary>
    public static bool IsDurable(in PublishOutcome outcome) =>
        !outcome.Storage.Log.InMemory && outcome.Storage.Log.DurableSequence >= outcome.Sequence;

    /// <summary>Completes when the message <paramref name="outcome"/> names is on disk; throws <see cref="IOException"/> when it will not be.</summary>
    public static ValueTask WhenDurableAsync(PublishOutcome outcome, CancellationToken cancellationToken) =>
        outcome.Storage.Committer?.WhenCommittedAsync(outcome.Sequence, cancellationToken)
        ?? throw new InvalidOperationException("a Memory topic is never durable");

    /// <summary>
    /// Starts a subscription: opens the topic if needed, finds where the subscription starts and registers its cursor.
    /// A durable consumer resumes right after its last Commit, and is exclusive while it is connected.
    /// </summary>
    /// <exception cref="TopicException">InvalidArgument, AlreadySubscribed, ConsumerPositionLost or StorageFailure.</exception>
    public async ValueTask<SubscriptionStart> SubscribeAsync(StartPosition from, string? durableName, CancellationToken cancellationToken)
    {
        ValidateStart(from);

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await OpenLockedAsync(cancellationToken).ConfigureAwait(false);
            var open = _open!;
            Volatile.Write(ref _lastUsedMs, NowMs);
            if (durableName is not null && !open.TryClaimConsumer(durableName))
            {
                throw new TopicException(ErrorCode.AlreadySubscribed, $"durable consumer '{durableName}' of '{Name}' is connected elsewhere");
            }

            try
            {
                var (reader, startSequence) = durableName is null
                    ? await StartAsync(open, from, cancellationToken).ConfigureAwait(false)
                    : await ResumeAsync(open, durableName, from, cancellationToken).ConfigureAwait(false);
                var cursor = open.OpenCursor(reader.Position, startSequence);
                return new SubscriptionStart(open, reader, cursor, startSequence);
            }
            catch
            {
                if (durableName is not null)
                {
                    open.ReleaseConsumer(durableName);
                }

                throw;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private static void ValidateStart(StartPosition from)
    {
        if (from.Kind == StartPositionKind.Sequence && from.Value < 1)
        {
            throw new TopicException(ErrorCode.InvalidArgument, $"a subscription cannot start at sequence {from.Value}: sequences start at 1");
        }

        if (from.Kind == StartPositionKind.Time && from.Value < 0)
        {
            throw new TopicException(ErrorCode.InvalidArgument, $"a subscription cannot start at time {from.Value}: it must be a Unix time in milliseconds, 0 or more");
        }
    }

    /// <summary>Records that the durable consumer <paramref name="name"/> has processed everything up to <paramref name="sequence"/>.</summary>
    /// <returns>What to pass to <see cref="WhenConsumerPositionDurableAsync"/>.</returns>
    public long CommitConsumer(OpenTopic open, string name, long sequence)
    {
        if (_context.Replication is { } replication)
        {
            // A cluster leader: the position goes to every node too; a Ping's Pong waits for it (WhenConsumerPositionDurableAsync).
            _commitReplicated = replication.ReplicateConsumerCommit(Name, name, sequence);
        }

        return CommitConsumerLocally(open, name, sequence);
    }

    /// <summary>A cluster node applying a replicated consumer position: opens the topic if needed and records it here only.</summary>
    public async ValueTask ApplyConsumerCommitAsync(string name, long sequence, CancellationToken cancellationToken)
    {
        if (Current is not { } open)
        {
            await OpenAsync(cancellationToken).ConfigureAwait(false);
            open = Current ?? throw new TopicException(ErrorCode.StorageFailure, $"topic '{Name}' could not be opened");
        }

        CommitConsumerLocally(open, name, sequence);
    }

    private long CommitConsumerLocally(OpenTopic open, string name, long sequence)
    {
        Volatile.Write(ref _lastUsedMs, NowMs);
        var version = open.Positions.Commit(name, sequence);
        if (open.Committer is { } committer)
        {
            committer.MarkDirty();
        }
        else
        {
            open.Positions.Flush(flushToDisk: false);
        }

        return version;
    }

    /// <summary>On a cluster node, where consumer state and dead letters go through the Raft log; null on a single node.</summary>
    public ITopicReplication? Replication => _context.Replication;

    /// <summary>
    /// Records that the consumer group <paramref name="name"/>'s stored state changed (its state is asked of
    /// <paramref name="state"/> when written): the topic's next flush writes it, and on a cluster leader it goes to
    /// every node. Returns the version to pass to <see cref="WhenGroupStateDurableAsync"/>.
    /// </summary>
    public long GroupChanged(OpenTopic open, string name, Func<GroupSnapshot> state)
    {
        open.Positions.Groups.Update(name, state);
        open.Committer?.MarkDirty();
        var version = open.Positions.GroupChanged();
        if (_context.Replication is not { } replication)
        {
            return version;
        }

        var replicator = Volatile.Read(ref _groupReplicator);
        if (replicator is null)
        {
            Interlocked.CompareExchange(ref _groupReplicator, new GroupStateReplicator(Name, replication, _logger), null);
            replicator = _groupReplicator!;
        }

        return replicator.Changed(name, state);
    }

    /// <summary>
    /// Completes once a consumer group's state change <paramref name="version"/> (from <see cref="GroupChanged"/>) is as
    /// durable as the topic's messages: on a majority of the cluster, fsynced on an Always topic, at once otherwise.
    /// </summary>
    public Task WhenGroupStateDurableAsync(OpenTopic open, long version) =>
        _groupReplicator is { } replicator ? replicator.WhenReplicatedAsync(version)
        : _context.Replication is not null ? Task.CompletedTask
        : WhenConsumerPositionDurableAsync(open, version);

    /// <summary>A cluster node applying a consumer group's replicated state: opens the topic if needed and records it here only.</summary>
    public async ValueTask ApplyGroupStateAsync(string name, GroupSnapshot state, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await OpenLockedAsync(cancellationToken).ConfigureAwait(false);
            var open = _open!;
            Volatile.Write(ref _lastUsedMs, NowMs);

            // A group still running here ran while this node led; its members are being sent to the new leader, and what
            // it knows is older than this: it must not write its state over the replicated one when it stops.
            if (open.Groups.TryGetValue(name, out var stale))
            {
                stale.Supersede();
            }

            open.Positions.Groups.Update(name, state);
            if (open.Committer is { } committer)
            {
                committer.MarkDirty();
            }
            else
            {
                open.Positions.Flush(flushToDisk: false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// On an Always topic, completes once the position change <paramref name="version"/> (from <see cref="CommitConsumer"/>)
    /// is written and fsynced by the topic's group flush; at once on other topics, whose positions are as durable as
    /// their messages. Throws <see cref="IOException"/> when that flush fails.
    /// </summary>
    public Task WhenConsumerPositionDurableAsync(OpenTopic open, long version) =>
        _context.Replication is not null ? _commitReplicated
        : version == 0 || Settings.Durability != Durability.Always || open.Log.InMemory
            ? Task.CompletedTask
            : open.Positions.WhenDurableAsync(version);

    /// <summary>The lowest sequence a durable consumer or a consumer group is done with, below which nothing is needed.</summary>
    private static long? LowestKept(OpenTopic open)
    {
        var positions = open.Positions.Lowest();
        var groups = open.Positions.Groups.LowestNeeded() - 1;
        return positions is null ? groups : groups is null ? positions : Math.Min(positions.Value, groups.Value);
    }

    /// <summary>
    /// Joins the consumer group <paramref name="name"/>: its first member ever starts it where <paramref name="from"/> says;
    /// later ones (and the first after a restart) join it where it is. The group takes <paramref name="settings"/>.
    /// </summary>
    /// <exception cref="TopicException">InvalidArgument, ConsumerPositionLost or StorageFailure.</exception>
    public async ValueTask<(ConsumerGroup Group, GroupMember Member, long StartSequence, OpenTopic Storage)> JoinGroupAsync(
        string name, StartPosition from, GroupSettings settings, int prefetch, DeliveryWindow window, ConnectionWriter writer,
        Func<string, CancellationToken, ValueTask<Topic>> resolveTopic, int maxOutstanding, CancellationToken cancellationToken)
    {
        ValidateStart(from);

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await OpenLockedAsync(cancellationToken).ConfigureAwait(false);
            var open = _open!;
            Volatile.Write(ref _lastUsedMs, NowMs);
            if (!open.Groups.TryGetValue(name, out var group))
            {
                LogReader reader;
                long start;
                GroupSnapshot? stored = null;
                GroupSnapshot? state = null;
                string? reason = null;

                // A private group (one subscription's own redelivery) is never stored.
                var found = ConsumerGroup.IsPrivate(name) ? PositionState.None : open.Positions.Groups.Get(name, out state, out reason);
                switch (found)
                {
                    case PositionState.Committed:
                        stored = state!;
                        reader = await open.Log.OpenReaderAtSequenceAsync(stored.FirstNeeded, cancellationToken).ConfigureAwait(false);
                        start = Math.Max(stored.FirstNeeded, open.Log.FirstSequence);
                        break;
                    case PositionState.Lost when from.Kind is StartPositionKind.Sequence or StartPositionKind.Time:
                        (reader, start) = await StartAsync(open, from, cancellationToken).ConfigureAwait(false);
                        LogGroupReset(Name, name, start);
                        break;
                    case PositionState.Lost:
                        throw new TopicException(ErrorCode.ConsumerPositionLost,
                            $"the stored state of consumer group '{name}' of '{Name}' cannot be read ({reason}); subscribe with From = Sequence(n) or Time(t) to set where it resumes");
                    default:
                        (reader, start) = await StartAsync(open, from, cancellationToken).ConfigureAwait(false);
                        break;
                }

                group = ConsumerGroup.Create(name, this, open, reader, start, stored, settings, resolveTopic, maxOutstanding,
                    _context.Loggers.CreateLogger<ConsumerGroup>());
                open.Groups[name] = group;
                open.Committer?.MarkDirty();
            }

            var member = group.Join(prefetch, window, writer, settings);
            return (group, member, Math.Max(group.DoneUpTo + 1, open.Log.FirstSequence), open);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Ends a group member's subscription; the group stops (its state stored) when its last member leaves.</summary>
    public async ValueTask LeaveGroupAsync(OpenTopic open, ConsumerGroup group, GroupMember member)
    {
        Volatile.Write(ref _lastUsedMs, NowMs);
        if (!await group.LeaveAsync(member).ConfigureAwait(false))
        {
            return;
        }

        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (group.MemberCount == 0 && open.Groups.TryGetValue(group.Name, out var current) && ReferenceEquals(current, group))
            {
                open.Groups.Remove(group.Name);
                await group.DisposeAsync().ConfigureAwait(false);
                open.Committer?.MarkDirty();
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Ends a subscription's hold on the topic.</summary>
    public void Unsubscribed(OpenTopic open, TopicCursor cursor, string? durableName)
    {
        Volatile.Write(ref _lastUsedMs, NowMs);
        open.CloseCursor(cursor);
        if (durableName is not null)
        {
            try
            {
                open.Positions.Release(durableName, flushToDisk: !open.Log.InMemory && Settings.Durability == Durability.Always);
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or ObjectDisposedException)
            {
                LogPositionNotWritten(exception, Name, durableName);
            }

            open.ReleaseConsumer(durableName);
        }
    }

    /// <summary>
    /// Forgets compaction keys whose window has passed and truncates the log below the first message anyone may still
    /// receive: the first unexpired one (with retention) or the tail (without), but never past the slowest reader or,
    /// without retention, past what a durable consumer has not committed. A truncation is committed at once, so disk is
    /// freed without waiting for the next publish.
    /// </summary>
    public async ValueTask SweepAsync(CancellationToken cancellationToken)
    {
        var open = Current;
        if (open is null)
        {
            return;
        }

        if (Settings.KeepLatestPerKey)
        {
            await SweepLatestAsync(open, cancellationToken).ConfigureAwait(false);
            return;
        }

        var nowMs = NowMs;
        var log = open.Log;
        var (keepFrom, keepSequence) = Settings.HasRetention
            ? FirstRetained(open, nowMs)
            : (log.TailAddress, log.NextSequence);

        // Without retention a topic keeps messages for its durable consumers and groups too, while they are away.
        if (!Settings.HasRetention && LowestKept(open) is { } lowest && lowest + 1 < keepSequence)
        {
            using var reader = await log.OpenReaderAtSequenceAsync(lowest + 1, cancellationToken).ConfigureAwait(false);
            (keepFrom, keepSequence) = (Math.Min(keepFrom, reader.Position), lowest + 1);
        }

        // Count and size limits cut further, whoever still wanted those messages (Kafka's and JetStream's discard-old).
        var retentionSequence = keepSequence;
        if (Settings.HasLimits && await LimitStartAsync(log, keepFrom, keepSequence, cancellationToken).ConfigureAwait(false) is { } limit)
        {
            (keepFrom, keepSequence) = limit;
        }

        // What the key and producers' windows still need of the messages about to go is written down first (only as far
        // as the slowest reader lets the log go: the gate below cuts no further than this, whatever readers do meanwhile).
        if (open.SlowestCursor() is { } behind && behind.Position < keepFrom)
        {
            (keepFrom, keepSequence) = (behind.Position, behind.Sequence);
        }

        if ((keepFrom > log.BeginAddress || (keepFrom == log.BeginAddress && keepSequence > log.FirstSequence))
            && !await RememberRemovedAsync(open, keepSequence, onlyExpired: Settings.HasRetention && keepSequence <= retentionSequence, holdingGate: false, cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!ReferenceEquals(_open, open))
            {
                return;
            }

            open.Keys?.Sweep(nowMs);
            open.Producers.Sweep(nowMs);
            if (open.SlowestCursor() is { } slowest && slowest.Position < keepFrom)
            {
                // A reader is behind: everything from it on stays.
                (keepFrom, keepSequence) = (slowest.Position, slowest.Sequence);
            }

            if (keepFrom > log.BeginAddress || (keepFrom == log.BeginAddress && keepSequence > log.FirstSequence))
            {
                var expiredUpTo = Settings.HasRetention ? Math.Min(retentionSequence, keepSequence) : log.FirstSequence;
                if (expiredUpTo > log.FirstSequence)
                {
                    Counters.ExpiredRemoved(log.CountAfter(log.FirstSequence - 1) - log.CountAfter(expiredUpTo - 1));
                }

                if (Settings.HasLimits && keepSequence > Math.Max(retentionSequence, log.FirstSequence))
                {
                    var from = Math.Max(retentionSequence, log.FirstSequence);
                    Counters.TrimmedRemoved(log.CountAfter(from - 1) - log.CountAfter(keepSequence - 1));
                }

                log.TruncateUntil(keepFrom, keepSequence);
                open.Committer?.MarkDirty();
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Where the topic must start for <see cref="TopicSettings.MaxMessages"/> and <see cref="TopicSettings.MaxBytes"/> to
    /// hold, when that is past (<paramref name="keepFrom"/>, <paramref name="keepSequence"/>); null when they hold already.
    /// Bytes are counted in log pages: the cut is at a page start, so up to a page more is kept.
    /// </summary>
    private async ValueTask<(long Address, long Sequence)?> LimitStartAsync(TopicLog log, long keepFrom, long keepSequence, CancellationToken cancellationToken)
    {
        (long Address, long Sequence)? cut = null;
        if (Settings.MaxMessages > 0 && log.CountAfter(keepSequence - 1) > Settings.MaxMessages)
        {
            var start = log.LastSequence - Settings.MaxMessages + 1;
            using var reader = await log.OpenReaderAtSequenceAsync(start, cancellationToken).ConfigureAwait(false);
            cut = (reader.Position, start);
        }

        var from = cut?.Address ?? keepFrom;
        if (Settings.MaxBytes > 0 && log.TailAddress - from > Settings.MaxBytes)
        {
            var page = 1L << log.PageSizeBits;
            var pageStart = (log.TailAddress - Settings.MaxBytes + page - 1) / page * page;
            if (pageStart > from && pageStart < log.TailAddress)
            {
                using var reader = log.OpenReader(pageStart, 0);
                if (reader.TryRead(out var message))
                {
                    var sequence = message.Sequence;
                    reader.Release();
                    cut = (pageStart, sequence);
                }
            }
        }

        return cut is { } found && found.Sequence > keepSequence ? found : null;
    }

    /// <summary>
    /// Closes the topic when nobody reads it and it was last used at least <paramref name="idleFor"/> ago (zero: at once),
    /// committing everything first; true when it is closed afterwards.
    /// </summary>
    public async ValueTask<bool> TryCloseAsync(TimeSpan idleFor, CancellationToken cancellationToken)
    {
        var open = Current;
        if (open is null)
        {
            return true;
        }

        if (open.InUse || NowMs - LastUsedMs < idleFor.TotalMilliseconds || !await _gate.WaitAsync(0, cancellationToken).ConfigureAwait(false))
        {
            return false;
        }

        try
        {
            if (!ReferenceEquals(_open, open) || open.InUse)
            {
                return _open is null;
            }

            if (!Settings.HasRetention && !Settings.KeepLatestPerKey)
            {
                // Nobody reads it: what every reader has seen can go now, not at some later open.
                var keepSequence = LowestKept(open) is { } lowest ? lowest + 1 : open.Log.NextSequence;
                if (keepSequence >= open.Log.NextSequence
                    && await RememberRemovedAsync(open, open.Log.NextSequence, onlyExpired: false, holdingGate: true, cancellationToken).ConfigureAwait(false))
                {
                    open.Log.TruncateUntil(open.Log.TailAddress, open.Log.NextSequence);
                }
            }

            await CloseLockedAsync(open).ConfigureAwait(false);
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>True when a closed topic with retention holds a message that has expired since: it should be opened and swept.</summary>
    public bool ClosedWithExpiredMessages(long nowMs) => Current is null && _quarantine is null && IsExpired(_closedOldestTimestampMs, nowMs);

    /// <summary>Opens a closed topic (for the retention sweep of a topic nobody uses); no-op when open.</summary>
    public async ValueTask OpenAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await OpenLockedAsync(cancellationToken).ConfigureAwait(false);

            // Open for one idle timeout: long enough to be swept, then closed again.
            Volatile.Write(ref _lastUsedMs, NowMs);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Replaces storage whose disk failed, once the disk takes writes again: the current <see cref="OpenTopic"/> is
    /// retired (its subscribers' connections are closed) and closed, and the log is reopened from its files exactly as a
    /// restart would. Records the disk never took are lost, as in a crash; Always publishes among them were never
    /// acknowledged, and no sequence is given twice.
    /// </summary>
    public async Task ReopenAfterFailureAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_open is not { } failed)
            {
                return;
            }

            failed.Retire();
            try
            {
                // A failed log may not finish closing; the reopened one does not need it to.
                await CloseLockedAsync(failed).AsTask().WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            }
            catch (Exception exception)
            {
                LogCloseFailed(exception, Name);
                Volatile.Write(ref _open, null);
                _context.OpenTopics.Return();
            }

            try
            {
                await OpenLockedAsync(CancellationToken.None).ConfigureAwait(false);
                var log = _open!.Log;
                LogReopenedAfterFailure(Name, log.FirstSequence, log.LastSequence);
            }
            catch (TopicException)
            {
                // Quarantined or out of descriptors: reported where it happened; the next use tries again.
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// For a cluster snapshot: runs <paramref name="copy"/> on this topic's files while nothing changes them. A closed
    /// topic is held closed; an open one is committed (clean: see <see cref="TopicLog.CopyCommittedAsync"/>) with its
    /// consumer positions written, and held from truncation, compaction and commits until the copy is done. Publishes
    /// do not come meanwhile: on a cluster node only the Raft state machine publishes, and it is the caller.
    /// </summary>
    public async ValueTask CopyFilesAsync(Func<ValueTask> copy, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_open is { } open && !open.Log.IsDisposed)
            {
                open.Positions.Flush(flushToDisk: false);
                await _windowsLock.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    await open.Log.CopyCommittedAsync(copy, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    _windowsLock.Release();
                }
            }
            else
            {
                await copy().ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Closes the topic for good, whatever uses it: its files are about to be replaced (a cluster node installing a
    /// snapshot), and this instance never opens them again; the registry makes a new one.
    /// </summary>
    public async ValueTask RetireAsync(string reason)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            _quarantine = reason;
            if (_open is { } open)
            {
                open.Retire();
                await CloseLockedAsync(open).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Closes the topic whatever uses it (the broker is stopping).</summary>
    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_open is { } open)
            {
                await CloseLockedAsync(open).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async ValueTask<(LogReader Reader, long StartSequence)> StartAsync(OpenTopic open, StartPosition from, CancellationToken cancellationToken)
    {
        if (Settings.KeepLatestPerKey)
        {
            return await StartLatestAsync(open, from, cancellationToken).ConfigureAwait(false);
        }

        var log = open.Log;
        switch (from.Kind)
        {
            case StartPositionKind.Sequence when !Settings.HasRetention && from.Value <= log.NextSequence:
            case StartPositionKind.Time when !Settings.HasRetention && from.Value <= NowMs:
                // Nothing is retained: what a topic without retention still stores waits for other readers, and is not
                // offered to a new subscription; it starts with live messages (a future start point waits, below).
                return (log.OpenReaderAtTail(), log.NextSequence);
            case StartPositionKind.Retained when Settings.HasRetention:
                var first = Math.Max(log.FirstSequence, open.OldestRetained?.Sequence ?? 0);
                return (log.OpenReaderAtBegin(), Math.Min(first, log.NextSequence));
            case StartPositionKind.Sequence:
                var reader = await log.OpenReaderAtSequenceAsync(from.Value, cancellationToken).ConfigureAwait(false);
                return (reader, Math.Max(from.Value, log.FirstSequence));
            case StartPositionKind.Time:
                var fromTime = await log.OpenReaderAtTimeAsync(from.Value, cancellationToken).ConfigureAwait(false);
                return (fromTime, FirstSequenceAt(log, fromTime.Position, from.Value));
            default:
                return (log.OpenReaderAtTail(), log.NextSequence);
        }
    }

    /// <summary>
    /// A durable consumer's start: right after its last Commit, wherever it is asked to start. A consumer whose stored
    /// position cannot be read is refused, unless it names where to resume (a sequence or a time), which becomes its position.
    /// </summary>
    private async ValueTask<(LogReader Reader, long StartSequence)> ResumeAsync(OpenTopic open, string name, StartPosition from, CancellationToken cancellationToken)
    {
        switch (open.Positions.Get(name, out var committed, out var reason))
        {
            case PositionState.Committed:
                var next = committed + 1;
                var reader = await open.Log.OpenReaderAtSequenceAsync(next, cancellationToken).ConfigureAwait(false);
                return (reader, Math.Max(next, open.Log.FirstSequence));

            case PositionState.Lost when from.Kind is StartPositionKind.Sequence or StartPositionKind.Time:
                var start = await StartAsync(open, from, cancellationToken).ConfigureAwait(false);
                try
                {
                    open.Positions.Reset(name, start.StartSequence - 1, flushToDisk: !open.Log.InMemory);
                }
                catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
                {
                    start.Reader.Dispose();
                    throw new TopicException(ErrorCode.StorageFailure, $"the position of durable consumer '{name}' could not be written: {exception.Message}");
                }

                LogPositionReset(Name, name, start.StartSequence);
                return start;

            case PositionState.Lost:
                throw new TopicException(ErrorCode.ConsumerPositionLost,
                    $"the stored position of durable consumer '{name}' of '{Name}' cannot be read ({reason}); subscribe with From = Sequence(n) or Time(t) to set where it resumes");

            default:
                // A new consumer is remembered from its first Subscribe, not its first Commit: what it is delivered and
                // does not commit comes again after it leaves, also on a topic without retention.
                var fresh = await StartAsync(open, from, cancellationToken).ConfigureAwait(false);
                CommitConsumer(open, name, fresh.StartSequence - 1);
                return fresh;
        }
    }

    /// <summary>
    /// The sequence of the first message at or after <paramref name="address"/> stamped at or after
    /// <paramref name="timestampMs"/>, among those readable now (a message still being appended is newer anyway).
    /// It never waits: it runs under the topic's gate, and what it could wait for needs that gate.
    /// </summary>
    private static long FirstSequenceAt(TopicLog log, long address, long timestampMs)
    {
        using var reader = log.OpenReader(address, 0);
        reader.SkipBefore(timestampMs);
        if (reader.TryRead(out var message))
        {
            var sequence = message.Sequence;
            reader.Release();
            return sequence;
        }

        return log.NextSequence;
    }

    /// <summary>
    /// The address and sequence of the oldest unexpired message (the tail when there is none). Remembered from the
    /// previous sweep, so the log is read only when that message can have expired.
    /// </summary>
    private static (long Address, long Sequence) FirstRetained(OpenTopic open, long nowMs)
    {
        var log = open.Log;
        if (open.OldestRetained is { } cached && cached.Address >= log.BeginAddress && nowMs - cached.TimestampMs < open.RetentionTtlMs)
        {
            return (cached.Address, cached.Sequence);
        }

        // Only what is readable now: a message still being appended is the newest and has not expired.
        using var reader = log.OpenReaderAtBegin();
        while (reader.TryRead(out var message))
        {
            var (sequence, timestampMs) = (message.Sequence, message.TimestampMs);
            reader.Release();
            if (nowMs - timestampMs < open.RetentionTtlMs)
            {
                var address = reader.MessageAddress;
                open.OldestRetained = new RetainedMark(address, sequence, timestampMs);
                return (address, sequence);
            }
        }

        open.OldestRetained = null;
        return (Math.Min(reader.Position, log.TailAddress), Math.Max(reader.LastSequence + 1, log.FirstSequence));
    }

    private async ValueTask<PublishOutcome> PublishWhenGateOpensAsync(Publish publish, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        return await PublishHoldingGate(publish, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Called with the gate held; releases it when the publish is done, at once or after the slow path.</summary>
    private ValueTask<PublishOutcome> PublishHoldingGate(in Publish publish, CancellationToken cancellationToken)
    {
        var releaseGate = true;
        try
        {
            if (_open is not { } open)
            {
                releaseGate = false;
                return OpenAndPublishAsync(publish, cancellationToken);
            }

            // While the disk refuses writes, accepting more would only fill memory with records that cannot be kept.
            if (open.Committer?.LastFailure is { } failure)
            {
                throw new TopicException(ErrorCode.StorageFailure, $"topic '{Name}' cannot write to disk ({failure.Message}); publishes are refused until it can");
            }

            var nowMs = NextTimestamp(publish.TimestampMs);
            _lastUsedMs = nowMs;

            // A repeat of a stored publish is answered as the original was, before the key window can call it a duplicate.
            if (publish.Producer.IsSet && open.Producers.TryGetStored(publish.Producer, nowMs, out var stored))
            {
                Counters.Repeat();
                return ValueTask.FromResult(new PublishOutcome(stored, Duplicate: false, open));
            }

            var key = publish.Key;
            if (key.HasValue && open.Keys is { } keys && keys.IsDuplicate(key.Value.Span, nowMs, out var original))
            {
                Counters.Duplicate();
                return ValueTask.FromResult(new PublishOutcome(original, Duplicate: true, open));
            }

            if (open.Log.TryAppend(nowMs, key, publish.Payload, publish.Headers, publish.Producer, out var sequence))
            {
                Accepted(open, publish, nowMs, sequence);
                return ValueTask.FromResult(new PublishOutcome(sequence, Duplicate: false, open));
            }

            releaseGate = false;
            return AppendSlowlyAsync(open, publish, nowMs, cancellationToken);
        }
        finally
        {
            if (releaseGate)
            {
                _gate.Release();
            }
        }
    }

    private async ValueTask<PublishOutcome> OpenAndPublishAsync(Publish publish, CancellationToken cancellationToken)
    {
        try
        {
            await OpenLockedAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            _gate.Release();
            throw;
        }

        return await PublishHoldingGate(publish, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The slow path: the gate is held; the log must make room, raise its sequence bound, or split the message.</summary>
    private async ValueTask<PublishOutcome> AppendSlowlyAsync(OpenTopic open, Publish publish, long nowMs, CancellationToken cancellationToken)
    {
        try
        {
            var sequence = await open.Log.AppendAsync(nowMs, publish.Key, publish.Payload, publish.Headers, publish.Producer, cancellationToken).ConfigureAwait(false);
            Accepted(open, publish, nowMs, sequence);
            return new PublishOutcome(sequence, Duplicate: false, open);
        }
        catch (IOException exception)
        {
            throw new TopicException(ErrorCode.StorageFailure, $"the message was not stored: {exception.Message}");
        }
        finally
        {
            _gate.Release();
        }
    }

    private void Accepted(OpenTopic open, in Publish publish, long nowMs, long sequence)
    {
        open.Latest?.Accept(publish.Key.HasValue, publish.Key.HasValue ? publish.Key.Value.Span : default, publish.Payload.Span, publish.Headers.Span, sequence, nowMs);
        open.Committer?.MarkDirty();
        open.Feed?.Appended(sequence, nowMs, open.Log.TailAddress, publish.Key, publish.Payload, publish.Headers);
        Counters.Stored((publish.Key?.Length ?? 0) + publish.Payload.Length + publish.Headers.Length);
        if (publish.Key.HasValue && open.Keys is { } keys)
        {
            keys.Accept(publish.Key.Value.Span, nowMs, sequence);
        }

        if (publish.Producer.IsSet)
        {
            open.Producers.Accept(publish.Producer, nowMs, sequence);
            _newestProducerRecordMs = nowMs;
        }
    }

    /// <summary>Now, but never earlier than the previous record's timestamp (the wall clock may step back).</summary>
    private long NextTimestamp(long stampedMs = 0)
    {
        var nowMs = Math.Max(stampedMs > 0 ? stampedMs : NowMs, _lastTimestampMs);
        _lastTimestampMs = nowMs;
        return nowMs;
    }

    /// <summary>Opens the storage; called with the gate held. A topic whose files cannot be served is quarantined.</summary>
    private async ValueTask OpenLockedAsync(CancellationToken cancellationToken)
    {
        if (_open is not null)
        {
            return;
        }

        if (_quarantine is { } reason)
        {
            throw new TopicException(ErrorCode.StorageFailure, $"topic '{Name}' is quarantined: {reason}; the server log says more");
        }

        if (!await _context.OpenTopics.TakeAsync(cancellationToken).ConfigureAwait(false))
        {
            throw new TopicException(ErrorCode.StorageFailure,
                $"topic '{Name}' cannot be opened now: {_context.OpenTopics.Limit} topics are open (MaxOpenTopics) and none of them is idle");
        }

        try
        {
            OpenTopic open;
            try
            {
                open = await Task.Run(OpenStorageAsync, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception exception) when (StorageExhaustedException.IsDescriptorExhaustion(exception) && _context.OpenTopics.MakeRoom is not null)
            {
                // Out of descriptors: close idle topics to make room, and try once more if any was closed.
                if (await _context.OpenTopics.MakeRoom(cancellationToken).ConfigureAwait(false) == 0)
                {
                    throw;
                }

                open = await Task.Run(OpenStorageAsync, cancellationToken).ConfigureAwait(false);
            }

            _lastTimestampMs = Math.Max(_lastTimestampMs, open.Log.LastTimestampMs);
            Volatile.Write(ref _open, open);
        }
        catch (Exception exception) when (StorageExhaustedException.IsExhaustion(exception))
        {
            _context.OpenTopics.Return();
            LogOpenExhausted(Name, exception.Message);
            throw new TopicException(ErrorCode.StorageFailure, $"topic '{Name}' cannot be opened now: {exception.Message}");
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or InvalidDataException or System.Text.Json.JsonException)
        {
            _context.OpenTopics.Return();
            _quarantine = exception.Message;
            LogQuarantined(exception, Name, Directory);
            throw new TopicException(ErrorCode.StorageFailure, $"topic '{Name}' is quarantined: {exception.Message}; the server log says more");
        }
        catch
        {
            _context.OpenTopics.Return();
            throw;
        }
    }

    private async Task<OpenTopic> OpenStorageAsync()
    {
        var newFolder = !System.IO.Directory.Exists(Directory);
        var storage = Settings.EnsureWritten(Directory, _context.Storage);
        // On a cluster node a Memory topic's view is kept on disk like an Interval one: a snapshot copies its files, and a
        // node restarting from a snapshot must find its messages and its next sequence exactly as the other nodes have them.
        var memory = Settings.Durability == Durability.Memory && !_context.ReplicatedView;
        var log = TopicLog.Open(Name, Directory, storage, _context.Files, _context.Time, _context.Loggers.CreateLogger<TopicLog>(), memory, newFolder);
        ConsumerPositionStore? positions = null;
        TopicCommitter? committer = null;
        try
        {
            positions = new ConsumerPositionStore(Directory, _context.Files);
            foreach (var (consumer, reason) in positions.Lost)
            {
                LogPositionLost(Name, consumer, reason);
            }

            foreach (var (group, reason) in positions.Groups.Lost)
            {
                LogPositionLost(Name, $"group {group}", reason);
            }

            var keys = Settings.HasCompaction ? new CompactionIndex(Settings.CompactionWindowMs) : null;
            var producers = new ProducerWindow(_context.Producers);
            var windows = memory ? null : LoadWindows(log, keys, producers);
            await RecoverWindowsAsync(log, keys, producers).ConfigureAwait(false);
            var latest = Settings.KeepLatestPerKey ? await RestoreLatestAsync(log).ConfigureAwait(false) : null;
            log.ReadFilter = latest;

            committer = memory ? null : new TopicCommitter(Name, Directory, log, positions,
                Settings.Durability is Durability.Always or Durability.Memory ? (_context.ReplicatedView ? DefaultCommitInterval : TimeSpan.Zero) : TimeSpan.FromMilliseconds(Settings.CommitIntervalMs),
                _context.Time, _context.Loggers.CreateLogger<TopicCommitter>(), _onStorageRecovered is null ? null : () => _onStorageRecovered(this),
                _context.FlushDuration);
            return new OpenTopic(log, committer, keys, producers, positions)
            {
                Windows = windows,
                WindowsUpTo = log.FirstSequence,
                RetentionTtlMs = Settings.RetentionTtlMs,
                Latest = latest,
                Feed = latest is null && _context.MaxTailFeedBytes > 0 ? new Subscriptions.TailFeed(NameUtf8, () => NowMs, log.NextSequence - 1, _context.MaxTailFeedBytes) : null,
            };
        }
        catch
        {
            if (committer is not null)
            {
                await committer.DisposeAsync().ConfigureAwait(false);
            }

            positions?.Dispose();
            await log.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Restores the compaction window and the idempotent producers' window in one scan of the records of the longer of
    /// the two windows, located by timestamp. The producers' part is skipped when this topic knows that no producer
    /// record is that recent (it was open before and saw none).
    /// </summary>
    private async ValueTask RecoverWindowsAsync(TopicLog log, CompactionIndex? keys, ProducerWindow producers)
    {
        var nowMs = NowMs;
        var keysFromMs = keys is null ? long.MaxValue : nowMs - Settings.CompactionWindowMs;
        var producersFromMs = _newestProducerRecordMs > nowMs - producers.WindowMs ? nowMs - producers.WindowMs : long.MaxValue;
        var fromMs = Math.Min(keysFromMs, producersFromMs);
        if (fromMs == long.MaxValue || log.LastSequence < log.FirstSequence || log.LastTimestampMs < fromMs)
        {
            _newestProducerRecordMs = long.MinValue;
            return;
        }

        var newestProducerRecordMs = long.MinValue;
        using var reader = await log.OpenReaderAtTimeAsync(fromMs, CancellationToken.None).ConfigureAwait(false);
        while (reader.TryRead(out var message))
        {
            if (message.HasKey && keys is not null && message.TimestampMs >= keysFromMs)
            {
                keys.Accept(message.Key, message.TimestampMs, message.Sequence);
            }

            if (message.Producer.IsSet && message.TimestampMs >= producersFromMs)
            {
                producers.Accept(message.Producer, message.TimestampMs, message.Sequence);
                newestProducerRecordMs = message.TimestampMs;
            }

            reader.Release();
        }

        _newestProducerRecordMs = producersFromMs == long.MaxValue ? long.MinValue : newestProducerRecordMs;
    }

    private async ValueTask CloseLockedAsync(OpenTopic open)
    {
        Volatile.Write(ref _open, null);
        try
        {
            // A sweep writing the window file outside the gate finishes first; after this it sees the topic closed.
            await _windowsLock.WaitAsync().ConfigureAwait(false);
            _windowsLock.Release();

            if (!open.Log.IsDisposed)
            {
                ClosedSequences = (open.Log.FirstSequence, open.Log.LastSequence, open.Log.CountAfter(open.Log.FirstSequence - 1));
            }

            // What a closed topic keeps in mind: when its oldest message expires, maintenance opens it to remove it.
            // (Not for a topic that keeps the latest value per key: it is compacted when it next opens.)
            _closedOldestTimestampMs = long.MaxValue;
            if (Settings.HasRetention && !Settings.KeepLatestPerKey && !open.Log.IsDisposed)
            {
                FirstRetained(open, NowMs);
                _closedOldestTimestampMs = open.OldestRetained?.TimestampMs ?? long.MaxValue;
            }

            await open.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _context.OpenTopics.Return();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic}: consumer group {Group}, whose stored state was lost, resumes at sequence {Sequence} as its Subscribe asked")]
    private partial void LogGroupReset(string topic, string group, long sequence);

    [LoggerMessage(Level = LogLevel.Error, Message = "Topic {Topic} is quarantined: its files in {Folder} cannot be served; it is refused until repaired, and every other topic is served")]
    private partial void LogQuarantined(Exception exception, string topic, string folder);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic} cannot be opened now: {Reason}")]
    private partial void LogOpenExhausted(string topic, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic}: the stored position of durable consumer '{Consumer}' cannot be read ({Reason}); it is refused until it subscribes with From = Sequence(n) or Time(t)")]
    private partial void LogPositionLost(string topic, string consumer, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic}: durable consumer '{Consumer}' resumes at sequence {Sequence}, as its Subscribe asked, its stored position having been lost")]
    private partial void LogPositionReset(string topic, string consumer, long sequence);

    [LoggerMessage(Level = LogLevel.Error, Message = "Topic {Topic}: the position of durable consumer '{Consumer}' could not be written")]
    private partial void LogPositionNotWritten(Exception exception, string topic, string consumer);

    [LoggerMessage(Level = LogLevel.Error, Message = "Failed to close topic {Topic}")]
    private partial void LogCloseFailed(Exception exception, string topic);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic} reopened from its files after a storage failure (messages {First}..{Last}); publishes are accepted again")]
    private partial void LogReopenedAfterFailure(string topic, long first, long last);
}

/// <summary>Where a topic is in its lifecycle.</summary>
internal enum TopicState
{
    /// <summary>Settings only: no file open, a few hundred bytes of memory. Opens on first use.</summary>
    Closed,

    /// <summary>The log is open and serves publishes and subscriptions.</summary>
    Open,

    /// <summary>Its files cannot be served (the reason is logged); refused with StorageFailure.</summary>
    Quarantined,
}

/// <summary>One publish as the topic stores it.</summary>
internal readonly record struct Publish(ReadOnlyMemory<byte>? Key, ReadOnlyMemory<byte> Payload, ReadOnlyMemory<byte> Headers, ProducerStamp Producer, long TimestampMs = 0);

/// <summary>Where a new subscription starts: the storage it reads, its reader and cursor, and the sequence it starts at.</summary>
internal readonly record struct SubscriptionStart(OpenTopic Storage, LogReader Reader, TopicCursor Cursor, long StartSequence);
