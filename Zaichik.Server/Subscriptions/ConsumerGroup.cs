using System.Buffers;
using System.Text;
using Microsoft.Extensions.Logging;
using Zaichik.Protocol;
using Zaichik.Server.Sessions.Internal;
using Zaichik.Server.Storage;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Subscriptions;

/// <summary>
/// A named consumer group of one topic: its members (subscriptions on any connections) share the topic's messages, each
/// message in flight to one member at a time. One pump reads the log in order and hands each message to a member with room
/// in its window: a keyed message to the member its key is assigned to (the member that has the key's messages in flight,
/// otherwise the one the key hashes to among the members now), an unkeyed one round robin. A delivery not committed
/// within <see cref="AckWaitMs"/>, given back with Nack, or left behind by a member that leaves waits for redelivery,
/// preferably to another member, with its delivery count; after <see cref="MaxDeliver"/> deliveries it goes to the
/// dead-letter topic instead and counts as done. The group's state (the last sequence read, every message not done and its
/// delivery count, the settings) is stored beside the topic's log with the durable consumers' positions.
/// </summary>
internal sealed partial class ConsumerGroup : IAsyncDisposable
{
    /// <summary>Most keys remembered with the member they go to; past it, keys with nothing in flight are forgotten.</summary>
    private const int MaxAssignedKeys = 100_000;

    /// <summary>Most messages staged for one member per pass.</summary>
    private const int MaxBatchMessages = 512;

    private readonly Topic _topic;
    private readonly OpenTopic _storage;
    private readonly TopicCursor _cursor;
    private readonly LogReader _reader;
    private readonly Func<string, CancellationToken, ValueTask<Topic>> _resolveTopic;
    private readonly ILogger _logger;
    private readonly int _maxOutstanding;
    private readonly bool _persistent;
    private readonly Lock _lock = new();
    private readonly List<GroupMember> _members = [];
    private readonly Queue<Pending> _order = new();
    private readonly Dictionary<long, Pending> _outstanding = [];
    private readonly PriorityQueue<Pending, (long DueMs, long Sequence)> _waiting = new();
    private readonly PriorityQueue<Pending, (long DueMs, long Sequence)> _deadlines = new();
    private readonly Dictionary<ulong, (GroupMember Member, int Count)> _keys = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<GroupSnapshot> _snapshot;
    private ITimer? _timer;
    private TaskCompletionSource? _wakeup;
    private bool _woken;
    private Task _pump = Task.CompletedTask;
    private Task<bool>? _readerWait;
    private Held? _held;
    private long _readUpTo;
    private int _nextMemberId;
    private int _roundRobin;
    private int _disposed;
    private bool _pumping;

    private ConsumerGroup(
        string name, Topic topic, OpenTopic storage, LogReader reader, long readUpTo, GroupSettings settings,
        Func<string, CancellationToken, ValueTask<Topic>> resolveTopic, int maxOutstanding, ILogger logger)
    {
        Name = name;
        _topic = topic;
        _storage = storage;
        _reader = reader;
        _readUpTo = readUpTo;
        Settings = settings;
        _resolveTopic = resolveTopic;
        _maxOutstanding = maxOutstanding;
        _logger = logger;
        _persistent = !IsPrivate(name) && !storage.Log.InMemory;
        _cursor = storage.OpenCursor(reader.Position, readUpTo + 1);
        _snapshot = Snapshot;
    }

    public string Name { get; }

    /// <summary>
    /// The prefix of a private group: the redelivery of one subscription that set AckWait, MaxDeliver or a dead-letter topic
    /// without a group. It has that one member, is not stored, and ends with it. Group names cannot start with it.
    /// </summary>
    public const string PrivatePrefix = "~";

    /// <summary>Whether <paramref name="name"/> names a private group.</summary>
    public static bool IsPrivate(string name) => name.StartsWith(PrivatePrefix, StringComparison.Ordinal);

    /// <summary>AckWait, MaxDeliver and the dead-letter topic: those of the member that joined last.</summary>
    public GroupSettings Settings { get; private set; }

    public uint AckWaitMs => Settings.AckWaitMs;

    private long _redelivered;
    private long _deadLettered;

    /// <summary>Deliveries that were not a message's first, since this group started here.</summary>
    public long Redelivered => Volatile.Read(ref _redelivered);

    /// <summary>Messages moved to the dead-letter topic (or dropped) after MaxDeliver, since this group started here.</summary>
    public long DeadLettered => Volatile.Read(ref _deadLettered);

    public uint MaxDeliver => Settings.MaxDeliver;

    /// <summary>Members now.</summary>
    public int MemberCount
    {
        get
        {
            lock (_lock)
            {
                return _members.Count;
            }
        }
    }

    /// <summary>Entries in the AckWait and redelivery timer queues, stale ones included (bounded by pruning).</summary>
    internal int TimerEntries
    {
        get
        {
            lock (_lock)
            {
                return _deadlines.Count + _waiting.Count;
            }
        }
    }

    /// <summary>Messages delivered and not done (in flight or waiting for redelivery).</summary>
    public int Outstanding
    {
        get
        {
            lock (_lock)
            {
                return _outstanding.Count;
            }
        }
    }

    /// <summary>Every message up to this sequence is done (committed, dead-lettered or expired).</summary>
    public long DoneUpTo
    {
        get
        {
            lock (_lock)
            {
                return FirstNeededLocked() - 1;
            }
        }
    }

    /// <summary>
    /// A group resumed from its stored <paramref name="state"/> (the messages it had not finished are delivered again as the
    /// reader passes them), or new, starting with <paramref name="reader"/>'s first message.
    /// </summary>
    public static ConsumerGroup Create(
        string name, Topic topic, OpenTopic storage, LogReader reader, long startSequence, GroupSnapshot? state, GroupSettings settings,
        Func<string, CancellationToken, ValueTask<Topic>> resolveTopic, int maxOutstanding, ILogger logger)
    {
        var group = new ConsumerGroup(name, topic, storage, reader, state?.ReadUpTo ?? startSequence - 1, settings, resolveTopic, maxOutstanding, logger);
        if (state is not null)
        {
            foreach (var (sequence, deliveries) in state.Outstanding.OrderBy(entry => entry.Sequence))
            {
                var pending = new Pending(sequence, reader.Position, null) { Deliveries = deliveries, State = PendingState.Replay };
                group._order.Enqueue(pending);
                group._outstanding[sequence] = pending;
            }
        }

        group.Changed();
        return group;
    }

    /// <summary>Adds a member; it receives messages once <see cref="Start"/> has run.</summary>
    public GroupMember Join(int prefetch, DeliveryWindow window, ConnectionWriter writer, GroupSettings settings)
    {
        lock (_lock)
        {
            Settings = settings;

            // A member until it leaves; it receives once started.
            var member = new GroupMember(_nextMemberId++, prefetch, window, writer) { Left = true };
            _members.Add(member);
            return member;
        }
    }

    /// <summary>Lets <paramref name="member"/> receive (after its Subscribe Ack is written) and starts the pump with the first one.</summary>
    public void Start(GroupMember member)
    {
        lock (_lock)
        {
            if (!_members.Contains(member))
            {
                return;
            }

            member.Left = false;
            if (!_pumping && Volatile.Read(ref _disposed) == 0)
            {
                _pumping = true;
                _timer ??= _topic.Time.CreateTimer(static state => ((ConsumerGroup)state!).Wake(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                _pump = Task.Run(CountedPumpAsync);
            }
        }

        Wake();
    }

    /// <summary>
    /// Removes <paramref name="member"/>: what it had in flight waits for redelivery to the others (at once), and its
    /// window is freed. True when it was the last member.
    /// </summary>
    public async ValueTask<bool> LeaveAsync(GroupMember member)
    {
        bool last;
        int released;
        Task writing;
        lock (_lock)
        {
            if (!_members.Contains(member))
            {
                return _members.Count == 0;
            }

            member.Left = true;
            _members.Remove(member);
            writing = member.Writing;
            released = member.InFlight.Count;
            var nowMs = _topic.NowMs;
            foreach (var sequence in member.InFlight)
            {
                if (_outstanding.TryGetValue(sequence, out var pending))
                {
                    ReleaseKeyLocked(pending);
                    WaitLocked(pending, nowMs);
                }
            }

            member.InFlight.Clear();
            foreach (var key in _keys.Where(entry => ReferenceEquals(entry.Value.Member, member)).Select(entry => entry.Key).ToArray())
            {
                _keys.Remove(key);
            }

            last = _members.Count == 0;
        }

        // Nothing is staged for a member that left; a write already started ends before the caller answers (an
        // Unsubscribe Ack follows every Message of its topic).
        await writing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        member.Staging.Reset();
        member.Window.Release(released);
        Changed();
        Wake();
        return last;
    }

    /// <summary>Commits one delivered message, whichever member it is in flight to (a late commit after a timeout still counts).</summary>
    public long CommitOne(long sequence)
    {
        GroupMember? holder;
        lock (_lock)
        {
            if (!_outstanding.TryGetValue(sequence, out var pending) || pending.State is not (PendingState.InFlight or PendingState.Waiting))
            {
                return 0;
            }

            holder = pending.State == PendingState.InFlight ? pending.Member : null;
            DoneLocked(pending);
        }

        holder?.Window.Release(1);
        return ChangedAndWake();
    }

    /// <summary>Commits every message in flight to <paramref name="member"/> up to <paramref name="sequence"/> (all of them when null).</summary>
    public long CommitUpTo(GroupMember member, long? sequence)
    {
        var released = 0;
        lock (_lock)
        {
            foreach (var inFlight in member.InFlight.ToArray())
            {
                if ((sequence is null || inFlight <= sequence) && _outstanding.TryGetValue(inFlight, out var pending))
                {
                    DoneLocked(pending);
                    released++;
                }
            }
        }

        if (released == 0)
        {
            return 0;
        }

        member.Window.Release(released);
        return ChangedAndWake();
    }

    /// <summary>Gives back a message in flight to <paramref name="member"/>: it is delivered again after <paramref name="delayMs"/>.</summary>
    public bool Nack(GroupMember member, long sequence, uint delayMs)
    {
        lock (_lock)
        {
            if (!member.InFlight.Contains(sequence) || !_outstanding.TryGetValue(sequence, out var pending))
            {
                return false;
            }

            member.InFlight.Remove(sequence);
            ReleaseKeyLocked(pending);
            WaitLocked(pending, _topic.NowMs + delayMs);
        }

        member.Window.Release(1);
        ChangedAndWake();
        return true;
    }

    /// <summary>Messages in flight to <paramref name="member"/>.</summary>
    public int InFlight(GroupMember member)
    {
        lock (_lock)
        {
            return member.InFlight.Count;
        }
    }

    /// <summary>Stops the pump and closes the reader; the state is stored for the group's next member.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _pump.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (_readerWait is { } wait)
            {
                await ((Task)wait).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
        finally
        {
            GroupMember[] members;
            lock (_lock)
            {
                members = [.. _members];
                _members.Clear();
            }

            foreach (var member in members)
            {
                await member.Writing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                member.Staging.Dispose();
            }

            if (_persistent && !Volatile.Read(ref _superseded))
            {
                // The last state, fixed: the store no longer asks this instance.
                _storage.Positions.Groups.Update(Name, Snapshot());
            }

            _timer?.Dispose();
            _reader.Dispose();
            _storage.CloseCursor(_cursor);
            _stop.Dispose();
        }
    }

    /// <summary>The group's state as stored.</summary>
    private GroupSnapshot Snapshot()
    {
        lock (_lock)
        {
            var outstanding = new List<(long, uint)>(_outstanding.Count);
            foreach (var pending in _order)
            {
                if (pending.State != PendingState.Done)
                {
                    outstanding.Add((pending.Sequence, pending.Deliveries));
                }
            }

            return new GroupSnapshot(Settings.AckWaitMs, Settings.MaxDeliver, Settings.DeadLetterTopic, _readUpTo, outstanding);
        }
    }

    /// <summary>
    /// On a cluster node that no longer leads: the group's state came from the new leader through the log, so this
    /// instance stops recording its own (older) one, now and when it stops.
    /// </summary>
    public void Supersede() => Volatile.Write(ref _superseded, true);

    private bool _superseded;

    /// <summary>Marks the stored state changed; returns the version a Ping waits for on an Always topic.</summary>
    private long Changed()
    {
        if (!_persistent || Volatile.Read(ref _superseded))
        {
            return 0;
        }

        return _topic.GroupChanged(_storage, Name, _snapshot);
    }

    private long ChangedAndWake()
    {
        var version = Changed();
        Wake();
        return version;
    }

    private void Wake()
    {
        TaskCompletionSource? wakeup;
        lock (_lock)
        {
            _woken = true;
            wakeup = _wakeup;
            _wakeup = null;
        }

        wakeup?.TrySetResult();
    }

    private long FirstNeededLocked()
    {
        var first = _held is { } held ? Math.Min(held.Sequence, _readUpTo + 1) : _readUpTo + 1;
        return _order.TryPeek(out var oldest) ? Math.Min(first, oldest.Sequence) : first;
    }

    private void DoneLocked(Pending pending)
    {
        if (pending.State == PendingState.InFlight && pending.Member is { } member)
        {
            member.InFlight.Remove(pending.Sequence);
            ReleaseKeyLocked(pending);
        }

        pending.State = PendingState.Done;
        pending.Member = null;
        _outstanding.Remove(pending.Sequence);
        while (_order.TryPeek(out var oldest) && oldest.State == PendingState.Done)
        {
            _order.Dequeue();
        }

        MoveCursorLocked();
    }

    private void MoveCursorLocked()
    {
        if (_order.TryPeek(out var oldest))
        {
            _cursor.MoveTo(oldest.Address, oldest.Sequence);
        }
        else if (_held is { } held)
        {
            _cursor.MoveTo(held.Address, held.Sequence);
        }
        else
        {
            _cursor.MoveTo(Volatile.Read(ref _readerPosition), _readUpTo + 1);
        }
    }

    private long _readerPosition;

    private void WaitLocked(Pending pending, long dueMs)
    {
        pending.State = PendingState.Waiting;
        pending.Member = null;
        pending.Generation++;
        pending.DueMs = dueMs;
        _waiting.Enqueue(pending, (dueMs, pending.Sequence));
        Prune(_waiting, PendingState.Waiting);
    }

    private void ReleaseKeyLocked(Pending pending)
    {
        if (pending.KeyHash is { } hash && pending.Member is { } member && _keys.TryGetValue(hash, out var assigned) && ReferenceEquals(assigned.Member, member))
        {
            // The key stays with its member while the member stays (forgotten only past MaxAssignedKeys, when idle).
            _keys[hash] = (member, Math.Max(0, assigned.Count - 1));
        }
    }

    private void AssignLocked(Pending pending, GroupMember member, long nowMs, bool holdsKey)
    {
        pending.State = PendingState.InFlight;
        pending.Member = member;
        pending.Deliveries++;
        pending.Generation++;
        pending.DueMs = nowMs + Settings.AckWaitMs;
        member.InFlight.Add(pending.Sequence);
        _deadlines.Enqueue(pending, (pending.DueMs, pending.Sequence));
        Prune(_deadlines, PendingState.InFlight);
        if (holdsKey && pending.KeyHash is { } hash)
        {
            if (_keys.Count >= MaxAssignedKeys && !_keys.ContainsKey(hash))
            {
                ForgetIdleKeysLocked();
            }

            _keys[hash] = _keys.TryGetValue(hash, out var assigned) ? (member, assigned.Count + 1) : (member, 1);
        }
        else
        {
            // Only a first delivery holds its key's member: a redelivery may go anywhere.
            pending.KeyHash = null;
        }
    }

    /// <summary>Forgets the keys with nothing in flight: they go where they hash among the members now.</summary>
    private void ForgetIdleKeysLocked()
    {
        foreach (var idle in _keys.Where(entry => entry.Value.Count == 0).Select(entry => entry.Key).ToArray())
        {
            _keys.Remove(idle);
        }
    }

    /// <summary>
    /// Drops the entries of a timer queue that no longer count (committed, redelivered, given back) once they outnumber the
    /// live ones: the queues are cleaned lazily as their times come, and at a high rate of commits the AckWait queue would
    /// otherwise hold every delivery of the last AckWait. Rebuilt at most once per as many additions as it holds.
    /// </summary>
    private void Prune(PriorityQueue<Pending, (long DueMs, long Sequence)> queue, PendingState live)
    {
        if (queue.Count < 2 * _outstanding.Count + 1024)
        {
            return;
        }

        var keep = queue.UnorderedItems.Where(item => item.Element.State == live && item.Element.DueMs == item.Priority.DueMs).ToArray();
        queue.Clear();
        foreach (var (element, priority) in keep)
        {
            queue.Enqueue(element, priority);
        }
    }

    /// <summary>Deliveries in flight past their AckWait wait for redelivery.</summary>
    private List<GroupMember>? ExpireLocked(long nowMs)
    {
        List<GroupMember>? released = null;
        while (_deadlines.TryPeek(out var pending, out var due) && due.DueMs <= nowMs)
        {
            _deadlines.Dequeue();
            if (pending.State != PendingState.InFlight || pending.DueMs != due.DueMs || pending.Member is not { } member)
            {
                continue;
            }

            member.InFlight.Remove(pending.Sequence);
            ReleaseKeyLocked(pending);
            (released ??= []).Add(member);
            WaitLocked(pending, nowMs);
        }

        return released;
    }

    /// <summary>A member with room, other than <paramref name="avoid"/> when there is one; round robin.</summary>
    private GroupMember? AnyMemberWithRoomLocked(GroupMember? avoid = null)
    {
        GroupMember? fallback = null;
        for (var i = 0; i < _members.Count; i++)
        {
            var member = _members[(_roundRobin + i) % _members.Count];
            if (!member.HasRoom)
            {
                continue;
            }

            if (ReferenceEquals(member, avoid))
            {
                fallback = member;
                continue;
            }

            _roundRobin = (_roundRobin + i + 1) % _members.Count;
            return member;
        }

        return fallback;
    }

    /// <summary>The member a key's messages go to: the one that has the key's messages in flight, else the one it hashes to.</summary>
    private GroupMember? MemberForKeyLocked(ulong hash)
    {
        if (_keys.TryGetValue(hash, out var assigned))
        {
            return assigned.Member;
        }

        GroupMember? best = null;
        var bestScore = 0UL;
        foreach (var member in _members)
        {
            // Rendezvous hashing: a key stays with its member while the member stays.
            var score = Mix(hash ^ (ulong)member.Id * 0x9E3779B97F4A7C15UL);
            if (best is null || score > bestScore)
            {
                (best, bestScore) = (member, score);
            }
        }

        return best;
    }

    /// <summary>Where the message a reader returned last holds the log: its address, or for one read from the compacted part, the cut the reader goes on from.</summary>
    private static long AddressOf(LogReader reader) => reader.LastFromCompacted ? reader.Position : reader.MessageAddress;

    private static ulong Mix(ulong value)
    {
        value ^= value >> 33;
        value *= 0xFF51AFD7ED558CCDUL;
        value ^= value >> 33;
        value *= 0xC4CEB9FE1A85EC53UL;
        return value ^ (value >> 33);
    }

    private static ulong HashKey(ReadOnlySpan<byte> key)
    {
        var hash = 0xCBF29CE484222325UL;
        foreach (var b in key)
        {
            hash = (hash ^ b) * 0x100000001B3UL;
        }

        return Mix(hash);
    }

    private async Task CountedPumpAsync()
    {
        _storage.PumpStarted();
        try
        {
            await PumpAsync(_stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        catch (Exception exception)
        {
            LogPumpFailed(exception, _topic.Name, Name);

            // The next member to join starts a new pump.
            lock (_lock)
            {
                _pumping = false;
            }
        }
        finally
        {
            _storage.PumpEnded();
        }
    }

    private async Task PumpAsync(CancellationToken cancellationToken)
    {
        var redeliveries = new List<(Pending Pending, GroupMember Member, long Generation)>();
        var deadLetters = new List<Pending>();
        while (!cancellationToken.IsCancellationRequested)
        {
            var nowMs = _topic.NowMs;
            redeliveries.Clear();
            deadLetters.Clear();
            List<GroupMember>? expired;
            lock (_lock)
            {
                _woken = false;
                if (_members.Count == 0)
                {
                    _pumping = false;
                    return;
                }

                expired = ExpireLocked(nowMs);
                TakeDueLocked(nowMs, redeliveries, deadLetters);
            }

            if (expired is not null)
            {
                foreach (var member in expired)
                {
                    member.Window.Release(1);
                }
            }

            foreach (var pending in deadLetters)
            {
                await DeadLetterAsync(pending, null, cancellationToken).ConfigureAwait(false);
            }

            await StageRedeliveriesAsync(redeliveries, nowMs, cancellationToken).ConfigureAwait(false);
            var readerIdle = await StageNewAsync(nowMs, cancellationToken).ConfigureAwait(false);
            var wrote = StartWrites();
            if (expired is not null || deadLetters.Count > 0 || redeliveries.Count > 0 || wrote)
            {
                Changed();
            }

            await WaitAsync(readerIdle, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Messages due for redelivery go to members with room (another than the last, when there is one), or to the dead letters.</summary>
    private void TakeDueLocked(long nowMs, List<(Pending, GroupMember, long)> redeliveries, List<Pending> deadLetters)
    {
        while (_waiting.TryPeek(out var pending, out var due) && due.DueMs <= nowMs)
        {
            if (pending.State != PendingState.Waiting || pending.DueMs != due.DueMs)
            {
                _waiting.Dequeue();
                continue;
            }

            if (Settings.MaxDeliver > 0 && pending.Deliveries >= Settings.MaxDeliver)
            {
                _waiting.Dequeue();
                pending.State = PendingState.DeadLettering;
                deadLetters.Add(pending);
                continue;
            }

            if (AnyMemberWithRoomLocked(pending.LastMember) is not { } member || redeliveries.Count >= MaxBatchMessages
                || member.Window.TryReserve(member.Prefetch, 1) == 0)
            {
                return;
            }

            _waiting.Dequeue();
            pending.LastMember = member;
            AssignLocked(pending, member, nowMs, holdsKey: false);
            redeliveries.Add((pending, member, pending.Generation));
        }
    }

    private async ValueTask StageRedeliveriesAsync(List<(Pending Pending, GroupMember Member, long Generation)> redeliveries, long nowMs, CancellationToken cancellationToken)
    {
        if (redeliveries.Count == 0)
        {
            return;
        }

        redeliveries.Sort(static (a, b) => a.Pending.Sequence.CompareTo(b.Pending.Sequence));
        LogReader? reader = null;
        try
        {
            foreach (var (pending, member, generation) in redeliveries)
            {
                if (reader is null || reader.LastSequence >= pending.Sequence)
                {
                    reader?.Dispose();
                    reader = await _storage.Log.OpenReaderAtSequenceAsync(pending.Sequence, cancellationToken).ConfigureAwait(false);
                }

                var found = false;
                while (reader.TryRead(out var message))
                {
                    try
                    {
                        if (message.Sequence < pending.Sequence)
                        {
                            continue;
                        }

                        if (message.Sequence == pending.Sequence && !_topic.IsExpired(message.TimestampMs, nowMs))
                        {
                            found = true;
                            lock (_lock)
                            {
                                if (pending.State == PendingState.InFlight && pending.Generation == generation && !member.Left)
                                {
                                    pending.Address = AddressOf(reader);
                                    FrameWriter.WriteMessage(member.Staging, _topic.NameUtf8, message.Sequence, message.TimestampMs, message.HasKey, message.Key,
                                        message.Payload, message.Headers, pending.Deliveries);
                                    member.StagedMessages++;
                                }
                            }
                        }

                        break;
                    }
                    finally
                    {
                        reader.Release();
                    }
                }

                if (!found)
                {
                    // Expired or removed meanwhile (retention, limits, damage): nothing is left to deliver.
                    bool release;
                    lock (_lock)
                    {
                        release = pending.State == PendingState.InFlight && pending.Generation == generation && ReferenceEquals(pending.Member, member);
                        if (pending.State is PendingState.InFlight or PendingState.Waiting)
                        {
                            DoneLocked(pending);
                        }
                    }

                    if (release)
                    {
                        member.Window.Release(1);
                    }
                }
            }

            _topic.Counters.Redelivery(redeliveries.Count);
            Interlocked.Add(ref _redelivered, redeliveries.Count);
        }
        finally
        {
            reader?.Dispose();
        }
    }

    /// <summary>
    /// Reads new messages while members have room, each to one member. Returns true when the reader ran out of messages
    /// readable now (the pump then waits for more), false when it stopped for want of room.
    /// </summary>
    private async ValueTask<bool> StageNewAsync(long nowMs, CancellationToken cancellationToken)
    {
        if (_held is { } held)
        {
            _held = null;
            if (!PlaceHeld(held, nowMs, out var heldDeadLetter))
            {
                _held = held;
                return false;
            }

            if (heldDeadLetter is not null)
            {
                await DeadLetterAsync(heldDeadLetter, held, cancellationToken).ConfigureAwait(false);
            }
        }

        if (_readerWait is { } wait)
        {
            if (!wait.IsCompleted)
            {
                return true;
            }

            _readerWait = null;
            if (!await wait.ConfigureAwait(false))
            {
                throw new OperationCanceledException("the topic's log closed");
            }
        }

        var staged = 0;
        while (staged < MaxBatchMessages)
        {
            lock (_lock)
            {
                if (_outstanding.Count >= _maxOutstanding || AnyMemberWithRoomLocked() is null)
                {
                    return false;
                }
            }

            if (!_reader.TryRead(out var message))
            {
                Volatile.Write(ref _readerPosition, _reader.Position);
                return true;
            }

            try
            {
                var placed = Place(message, AddressOf(_reader), nowMs, out var deadLetter);
                if (deadLetter is not null)
                {
                    var copy = Held.Copy(message, AddressOf(_reader), deadLetter.KeyHash);
                    _reader.Release();
                    await DeadLetterAsync(deadLetter, copy, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                if (!placed)
                {
                    _held = Held.Copy(message, AddressOf(_reader), message.HasKey ? HashKey(message.Key) : null);
                    return false;
                }

                staged++;
            }
            finally
            {
                _reader.Release();
                Volatile.Write(ref _readerPosition, _reader.Position);
            }
        }

        return false;
    }

    /// <summary>
    /// Hands one message read from the log to a member. False when its member has no room (the message is held until it
    /// has); <paramref name="deadLetter"/> is set when a message the group resumed with has used up its deliveries.
    /// </summary>
    private bool Place(in LogMessage message, long address, long nowMs, out Pending? deadLetter)
    {
        deadLetter = null;
        lock (_lock)
        {
            Pending? pending = null;
            if (message.Sequence <= _readUpTo)
            {
                // Read again after a restart: only what was not done is delivered again.
                if (!_outstanding.TryGetValue(message.Sequence, out pending) || pending.State != PendingState.Replay)
                {
                    return true;
                }

                if (_topic.IsExpired(message.TimestampMs, nowMs))
                {
                    DoneLocked(pending);
                    return true;
                }
            }
            else if (_topic.IsExpired(message.TimestampMs, nowMs))
            {
                _readUpTo = message.Sequence;
                MoveCursorLocked();
                return true;
            }

            // A message given back (a Nack, a member that left) and due now goes before any new one, even when it came
            // back after this round of the pump took what was due: the new one waits for the next round.
            if (pending is null && _waiting.TryPeek(out _, out var due) && due.DueMs <= _topic.NowMs)
            {
                return false;
            }

            var hash = message.HasKey ? HashKey(message.Key) : (ulong?)null;
            if (pending is not null && Settings.MaxDeliver > 0 && pending.Deliveries >= Settings.MaxDeliver)
            {
                pending.State = PendingState.DeadLettering;
                pending.KeyHash = hash;
                deadLetter = pending;
                return true;
            }

            // A redelivery read from the log goes to another member than the last when one has room, as TakeDueLocked does.
            var member = hash is { } keyHash ? MemberForKeyLocked(keyHash) : AnyMemberWithRoomLocked(pending?.LastMember);
            if (member is null || !member.HasRoom || member.Window.TryReserve(member.Prefetch, 1) == 0)
            {
                return false;
            }

            if (pending is null)
            {
                pending = new Pending(message.Sequence, address, hash);
                _order.Enqueue(pending);
                _outstanding[message.Sequence] = pending;
                _readUpTo = message.Sequence;
            }
            else
            {
                pending.Address = address;
                pending.KeyHash = hash;
                _topic.Counters.Redelivery(1);
                Interlocked.Increment(ref _redelivered);
            }

            pending.LastMember = member;
            AssignLocked(pending, member, nowMs, holdsKey: true);
            FrameWriter.WriteMessage(member.Staging, _topic.NameUtf8, message.Sequence, message.TimestampMs, message.HasKey, message.Key, message.Payload,
                message.Headers, pending.Deliveries);
            member.StagedMessages++;
            MoveCursorLocked();
            return true;
        }
    }

    private bool PlaceHeld(Held held, long nowMs, out Pending? deadLetter) =>
        Place(new LogMessage(held.Sequence, held.TimestampMs, held.Key is not null, held.Key, held.Payload, held.Headers), held.Address, nowMs, out deadLetter);

    /// <summary>Starts the write of every member's staged frames; true when any was started.</summary>
    private bool StartWrites()
    {
        var started = false;
        lock (_lock)
        {
            foreach (var member in _members)
            {
                if (member.Staging.WrittenCount > 0 && member.Writing.IsCompleted)
                {
                    started = true;
                    member.Writing = WriteAsync(member);
                }
            }
        }

        return started;
    }

    private async Task WriteAsync(GroupMember member)
    {
        try
        {
            var (messages, bytes) = (member.StagedMessages, member.Staging.WrittenCount);
            member.StagedMessages = 0;
            _topic.Counters.Delivered(messages, bytes);
            member.Sent(messages, bytes);
            await member.Writer.WriteAsync(member.Staging.WrittenMemory, _stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            lock (_lock)
            {
                member.Staging.Reset();
            }

            Wake();
        }
    }

    /// <summary>Waits for a commit, a Nack, a member, a timer, a write, room in a window, or (when caught up) new messages.</summary>
    private async ValueTask WaitAsync(bool readerIdle, CancellationToken cancellationToken)
    {
        Task wakeup;
        long nextDueMs;
        GroupMember[] blocked;
        lock (_lock)
        {
            if (_woken)
            {
                return;
            }

            _wakeup ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            wakeup = _wakeup.Task;
            nextDueMs = long.MaxValue;
            if (_deadlines.TryPeek(out _, out var deadline))
            {
                nextDueMs = deadline.DueMs;
            }

            if (_waiting.TryPeek(out _, out var waiting))
            {
                nextDueMs = Math.Min(nextDueMs, waiting.DueMs);
            }

            blocked = [.. _members.Where(member => !member.Left && member.Window.InFlight >= member.Prefetch)];
        }

        if (nextDueMs != long.MaxValue)
        {
            // Set again if the clock moved while the timer was being set: it counts from when it is set.
            long nowMs;
            do
            {
                nowMs = _topic.NowMs;
                _timer!.Change(TimeSpan.FromMilliseconds(Math.Max(0, nextDueMs - nowMs)), Timeout.InfiniteTimeSpan);
            }
            while (_topic.NowMs != nowMs);
        }

        var waits = new List<Task>(blocked.Length + 2) { wakeup };
        if (readerIdle && _held is null)
        {
            _readerWait ??= _reader.WaitAsync(cancellationToken).AsTask();
            waits.Add(_readerWait);
        }

        foreach (var member in blocked)
        {
            waits.Add(member.Window.WaitForRoomAsync(member.Prefetch, cancellationToken));
        }

        await Task.WhenAny(waits).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <summary>
    /// Moves a message that used up its deliveries to the dead-letter topic (with headers naming where it came from), or
    /// drops it when the group has none, and counts it as done. A failed publish is retried a second later.
    /// </summary>
    private async ValueTask DeadLetterAsync(Pending pending, Held? message, CancellationToken cancellationToken)
    {
        try
        {
            if (Settings.DeadLetterTopic is { } deadLetterTopic)
            {
                message ??= await ReadCopyAsync(pending.Sequence, cancellationToken).ConfigureAwait(false);
                if (message is not null)
                {
                    var target = await _resolveTopic(deadLetterTopic, cancellationToken).ConfigureAwait(false);
                    var headers = DeadLetterHeaders(message.Headers, pending.Sequence, pending.Deliveries);
                    // Typed: `keyBytes : null` is a null byte[], which converts to an empty key rather than to none.
                    var key = message.Key is { } keyBytes ? new ReadOnlyMemory<byte>(keyBytes) : (ReadOnlyMemory<byte>?)null;
                    if (_topic.Replication is { } replication)
                    {
                        // On a cluster leader the dead letter goes through the log to every node, like a client's publish.
                        await replication.PublishAsync(target.Name, key, message.Payload, headers, cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        var outcome = await target.PublishAsync(key, message.Payload, headers, ProducerStamp.None, cancellationToken).ConfigureAwait(false);
                        if (target.Settings.Durability == Durability.Always)
                        {
                            await Topic.WhenDurableAsync(outcome, cancellationToken).ConfigureAwait(false);
                        }
                    }
                }
            }

            lock (_lock)
            {
                if (pending.State == PendingState.DeadLettering)
                {
                    DoneLocked(pending);
                }
            }

            _topic.Counters.DeadLetter();
            Interlocked.Increment(ref _deadLettered);
            LogDeadLettered(_topic.Name, Name, pending.Sequence, pending.Deliveries, Settings.DeadLetterTopic ?? "(none: dropped)");
        }
        catch (Exception exception) when (exception is TopicException or IOException or ReplicationUnavailableException)
        {
            LogDeadLetterFailed(exception, _topic.Name, Name, pending.Sequence);
            lock (_lock)
            {
                if (pending.State == PendingState.DeadLettering)
                {
                    WaitLocked(pending, _topic.NowMs + 1000);
                }
            }
        }
    }

    private ReadOnlyMemory<byte> DeadLetterHeaders(ReadOnlyMemory<byte> original, long sequence, uint deliveries)
    {
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        var block = new ArrayBufferWriter<byte>(original.Length + 160);
        block.Write(original.Span);
        HeaderBlock.WriteEntry(block, DeadLetterHeader.Topic, true, _topic.NameUtf8);
        HeaderBlock.WriteEntry(block, DeadLetterHeader.Sequence, true, Encoding.ASCII.GetBytes(sequence.ToString(invariant)));
        HeaderBlock.WriteEntry(block, DeadLetterHeader.DeliveryCount, true, Encoding.ASCII.GetBytes(deliveries.ToString(invariant)));
        HeaderBlock.WriteEntry(block, DeadLetterHeader.Group, true, Encoding.UTF8.GetBytes(Name));
        return block.WrittenMemory;
    }

    private async ValueTask<Held?> ReadCopyAsync(long sequence, CancellationToken cancellationToken)
    {
        using var reader = await _storage.Log.OpenReaderAtSequenceAsync(sequence, cancellationToken).ConfigureAwait(false);
        while (reader.TryRead(out var message))
        {
            try
            {
                if (message.Sequence == sequence)
                {
                    return Held.Copy(message, AddressOf(reader), null);
                }

                if (message.Sequence > sequence)
                {
                    return null;
                }
            }
            finally
            {
                reader.Release();
            }
        }

        return null;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Delivery of topic {Topic} to consumer group {Group} stopped")]
    private partial void LogPumpFailed(Exception exception, string topic, string group);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic}, consumer group {Group}: message {Sequence} was delivered {Deliveries} times without a commit; moved to {DeadLetterTopic}")]
    private partial void LogDeadLettered(string topic, string group, long sequence, uint deliveries, string deadLetterTopic);

    [LoggerMessage(Level = LogLevel.Error, Message = "Topic {Topic}, consumer group {Group}: message {Sequence} could not be moved to the dead-letter topic; retrying")]
    private partial void LogDeadLetterFailed(Exception exception, string topic, string group, long sequence);

    private enum PendingState
    {
        /// <summary>Not done when the group last stopped; delivered again when the reader passes it.</summary>
        Replay,
        InFlight,
        Waiting,
        DeadLettering,
        Done,
    }

    /// <summary>A message the group delivered and has not finished with.</summary>
    private sealed class Pending(long sequence, long address, ulong? keyHash)
    {
        public long Sequence { get; } = sequence;

        /// <summary>Where it is in the log (at or before it, for one not read again yet after a restart).</summary>
        public long Address { get; set; } = address;

        /// <summary>Set while its first delivery holds its key's member.</summary>
        public ulong? KeyHash { get; set; } = keyHash;

        public PendingState State { get; set; }

        public GroupMember? Member { get; set; }

        public GroupMember? LastMember { get; set; }

        public uint Deliveries { get; set; }

        public long DueMs { get; set; }

        /// <summary>Bumped by every change of state, so that queued timers and reads of an older state are ignored.</summary>
        public long Generation { get; set; }
    }

    /// <summary>A message copied out of the log: held for a member without room, or on its way to the dead-letter topic.</summary>
    private sealed record Held(long Sequence, long TimestampMs, long Address, byte[]? Key, byte[] Payload, byte[] Headers, ulong? KeyHash)
    {
        public static Held Copy(in LogMessage message, long address, ulong? keyHash) =>
            new(message.Sequence, message.TimestampMs, address, message.HasKey ? message.Key.ToArray() : null, message.Payload.ToArray(), message.Headers.ToArray(), keyHash);
    }
}

/// <summary>A consumer group's settings, as its last member asked.</summary>
internal readonly record struct GroupSettings(uint AckWaitMs, uint MaxDeliver, string? DeadLetterTopic);

/// <summary>The headers a dead-lettered message gains.</summary>
internal static class DeadLetterHeader
{
    public const string Topic = "zaichik-dead-letter-topic";
    public const string Sequence = "zaichik-dead-letter-sequence";
    public const string DeliveryCount = "zaichik-delivery-count";
    public const string Group = "zaichik-dead-letter-group";
}
