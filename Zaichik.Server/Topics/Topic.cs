using System.Buffers;
using System.Text;
using FASTER.core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Zaichik.Protocol;
using Zaichik.Server.Storage;

namespace Zaichik.Server.Topics;

/// <summary>
/// One topic: its log, its settings, its compaction window and its readers' cursors. Publishes are serialised
/// by one gate so that timestamps never go backwards in log order (which lets retention treat expired records
/// as a prefix) and so that a key's duplicate check and acceptance are atomic.
/// </summary>
internal sealed class Topic : IAsyncDisposable
{
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _appendGate = new(1, 1);
    private readonly CompactionIndex? _keys;
    private readonly TopicCommitter? _committer;
    private readonly HashSet<string> _connectedConsumers = new(StringComparer.Ordinal);
    private readonly Lock _cursorLock = new();
    private readonly List<TopicCursor> _cursors = [];
    private long _lastTimestampMs;
    private int _runningPumps;

    // What the last retention sweep found at the head of the log; only the sweep touches these.
    private long _oldestTimestampAddress = -1;
    private long _oldestTimestampMs;

    private readonly CancellationTokenSource _retired = new();

    /// <param name="onStorageRecovered">Called when the disk takes writes again after a failed commit (see <see cref="TopicCommitter"/>).</param>
    public Topic(string name, string directory, TopicSettings settings, TopicLog log, TimeProvider time, ILogger? logger = null, Action<Topic>? onStorageRecovered = null)
    {
        Name = name;
        NameUtf8 = Encoding.UTF8.GetBytes(name);
        Directory = directory;
        Settings = settings.Resolve(Durability.Interval, DefaultCommitInterval);
        Log = log;
        _time = time;
        _keys = settings.HasCompaction ? new CompactionIndex(settings.CompactionWindowMs) : null;
        ConsumerPositions = new ConsumerPositionStore(directory, flushToDisk: Settings.Durability == Durability.Always);
        _committer = Settings.Durability switch
        {
            Durability.Memory => null,
            Durability.Always => new TopicCommitter(name, directory, log, TimeSpan.Zero, time, logger ?? NullLogger.Instance, Recovered(onStorageRecovered)),
            _ => new TopicCommitter(name, directory, log, TimeSpan.FromMilliseconds(Settings.CommitIntervalMs), time, logger ?? NullLogger.Instance, Recovered(onStorageRecovered)),
        };

        Action? Recovered(Action<Topic>? callback) => callback is null ? null : () => callback(this);
    }

    /// <summary>
    /// Cancelled when this topic object is retired: its log failed and the registry replaces it with one reopened
    /// from the last commit. Connections subscribed to it are closed; publishes resolve the topic anew.
    /// </summary>
    public CancellationToken Retired => _retired.Token;

    public bool IsRetired => _retired.IsCancellationRequested;

    /// <summary>Marks this topic object as replaced (see <see cref="Retired"/>).</summary>
    public void Retire() => _retired.Cancel();

    /// <summary>Used only when a topic is built with unresolved settings (tests); the registry always resolves them.</summary>
    private static readonly TimeSpan DefaultCommitInterval = TimeSpan.FromMilliseconds(100);

    public string Name { get; }

    /// <summary>The name as sent in every Message frame, encoded once.</summary>
    public byte[] NameUtf8 { get; }

    public string Directory { get; }

    public TopicSettings Settings { get; }

    public TopicLog Log { get; }

    /// <summary>Committed offsets of this topic's durable consumers.</summary>
    public ConsumerPositionStore ConsumerPositions { get; }

    /// <summary>Keys held by the compaction window (0 when compaction is off).</summary>
    public int CompactionKeyCount => _keys?.Count ?? 0;

    /// <summary>
    /// Stores one message unless its key is inside the compaction window. <paramref name="scratch"/> must hold
    /// <see cref="RecordSize"/> bytes; it is the caller's, so concurrent publishers never share one. Completes
    /// synchronously unless the log's in-memory tail is full, another publish holds the gate, or the message is
    /// larger than a log page and must be split.
    /// </summary>
    /// <exception cref="TopicException">With <see cref="ErrorCode.StorageFailure"/> while the topic's commits are failing.</exception>
    public ValueTask<PublishOutcome> PublishAsync(ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte> payload, byte[] scratch, CancellationToken cancellationToken)
    {
        // While the disk refuses writes, accepting more would only fill memory with records that cannot be kept.
        if (_committer?.LastFailure is { } failure)
        {
            throw new TopicException(ErrorCode.StorageFailure, $"topic '{Name}' cannot write to disk ({failure.Message}); publishes are refused until it can");
        }

        return _appendGate.Wait(0)
            ? PublishHoldingGate(key, payload, scratch, cancellationToken)
            : PublishWhenGateOpensAsync(key, payload, scratch, cancellationToken);
    }

    /// <summary>Scratch bytes <see cref="PublishAsync"/> needs for a message of these sizes.</summary>
    public int RecordSize(int keyLength, int payloadLength) => Math.Min(LogRecord.SizeOf(keyLength, payloadLength), Log.MaxRecordSize);

    /// <summary>The address a new subscription starts from. Sequence and Time start like Retained until the log assigns sequences.</summary>
    public long StartAddress(StartPosition from) =>
        (from.Kind is StartPositionKind.Retained or StartPositionKind.Sequence or StartPositionKind.Time) && Settings.HasRetention ? Log.BeginAddress : Log.TailAddress;

    /// <summary>True when a record stamped <paramref name="timestampMs"/> must no longer be delivered.</summary>
    public bool IsExpired(long timestampMs, long nowMs) =>
        Settings.HasRetention && nowMs - timestampMs >= Settings.RetentionTtlMs;

    public long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Marks the durable consumer <paramref name="name"/> as connected; false when it already is (it is exclusive).</summary>
    public bool TryClaimConsumer(string name)
    {
        lock (_cursorLock)
        {
            return _connectedConsumers.Add(name);
        }
    }

    public void ReleaseConsumer(string name)
    {
        lock (_cursorLock)
        {
            _connectedConsumers.Remove(name);
        }
    }

    public TopicCursor OpenCursor(long position)
    {
        var cursor = new TopicCursor(position);
        lock (_cursorLock)
        {
            _cursors.Add(cursor);
        }

        return cursor;
    }

    public void CloseCursor(TopicCursor cursor)
    {
        lock (_cursorLock)
        {
            _cursors.Remove(cursor);
        }
    }

    /// <summary>Cursors open now: one per live subscription of this topic (tests count them to find leaks).</summary>
    public int SubscriberCount
    {
        get
        {
            lock (_cursorLock)
            {
                return _cursors.Count;
            }
        }
    }

    /// <summary>Delivery pumps of this topic's subscriptions still running (tests count them to find leaks).</summary>
    public int RunningPumps => Volatile.Read(ref _runningPumps);

    public void PumpStarted() => Interlocked.Increment(ref _runningPumps);

    public void PumpEnded() => Interlocked.Decrement(ref _runningPumps);

    /// <summary>
    /// Forgets compaction keys whose window has passed and truncates the log below the first record anyone may
    /// still receive: the first unexpired record (with retention) or the tail (without), but never past the
    /// slowest reader or, without retention, past what a durable consumer has not committed. Returns the new begin address.
    /// </summary>
    public async ValueTask<long> SweepAsync(CancellationToken cancellationToken)
    {
        var nowMs = NowMs;
        if (_keys is not null)
        {
            await _appendGate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                _keys.Sweep(nowMs);
            }
            finally
            {
                _appendGate.Release();
            }
        }

        var keepFrom = Settings.HasRetention
            ? await FirstRetainedAddressAsync(nowMs, cancellationToken).ConfigureAwait(false)
            : Log.TailAddress;

        lock (_cursorLock)
        {
            foreach (var cursor in _cursors)
            {
                keepFrom = Math.Min(keepFrom, cursor.Position);
            }
        }

        // Without retention a topic keeps messages for its readers only; a durable consumer that is away is one of them.
        if (!Settings.HasRetention && ConsumerPositions.Lowest() is { } lowestCommitted)
        {
            keepFrom = Math.Min(keepFrom, lowestCommitted);
        }

        Log.TruncateUntil(keepFrom);
        return Log.BeginAddress;
    }

    /// <summary>
    /// Restores what lives only in memory after the log is reopened: the compaction window (from the records
    /// of the last window only, located by timestamp) and the latest timestamp, so timestamps keep increasing.
    /// Returns how many keys the window holds.
    /// </summary>
    public async ValueTask<int> RecoverAsync(CancellationToken cancellationToken)
    {
        if (Log.TailAddress == Log.BeginAddress)
        {
            return 0;
        }

        var nowMs = NowMs;
        var from = _keys is not null
            ? await Log.SeekTimestampAsync(nowMs - Settings.CompactionWindowMs, cancellationToken).ConfigureAwait(false)
            : await Log.SeekTimestampAsync(long.MaxValue, cancellationToken).ConfigureAwait(false);
        var tail = Log.TailAddress;
        using var iterator = Log.Range(from, tail);
        while (true)
        {
            while (iterator.GetNext(out var entry, out var length, out var address))
            {
                if (!LogRecord.TryRead(entry.AsSpan(0, length), out var record))
                {
                    continue;
                }

                _lastTimestampMs = Math.Max(_lastTimestampMs, record.TimestampMs);
                if (_keys is not null && record.HasKey && record.Kind != LogRecordKind.Continuation && nowMs - record.TimestampMs < Settings.CompactionWindowMs)
                {
                    _keys.Accept(record.Key, record.TimestampMs, address);
                }
            }

            if (iterator.NextAddress >= tail || !await iterator.WaitAsync(cancellationToken).ConfigureAwait(false))
            {
                return CompactionKeyCount;
            }
        }
    }

    /// <summary>True when the log is committed past <paramref name="address"/>.</summary>
    public bool IsDurable(long address) => !Log.InMemory && Log.CommittedUntilAddress > address;

    /// <summary>Completes when the log is committed past <paramref name="address"/>; throws <see cref="IOException"/> while commits fail.</summary>
    public ValueTask WhenDurableAsync(long address, CancellationToken cancellationToken) =>
        _committer?.WhenCommittedAsync(address, cancellationToken)
        ?? throw new InvalidOperationException($"topic '{Name}' is in memory and never durable");

    public async ValueTask DisposeAsync()
    {
        if (_committer is not null)
        {
            await _committer.DisposeAsync().ConfigureAwait(false);
        }

        await Log.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// The address of the oldest record that has not expired (the tail if none). The oldest record's timestamp is
    /// remembered from the previous sweep, so the log is read only when that record can have expired.
    /// </summary>
    private async ValueTask<long> FirstRetainedAddressAsync(long nowMs, CancellationToken cancellationToken)
    {
        if (_oldestTimestampAddress == Log.BeginAddress && !IsExpired(_oldestTimestampMs, nowMs))
        {
            return Log.BeginAddress;
        }

        var tail = Log.TailAddress;
        using var iterator = Log.Range(Log.BeginAddress, tail);
        while (true)
        {
            while (iterator.GetNext(out var entry, out var length, out var address))
            {
                if (!LogRecord.TryReadTimestamp(entry.AsSpan(0, length), out var timestampMs) || !IsExpired(timestampMs, nowMs))
                {
                    _oldestTimestampAddress = address;
                    _oldestTimestampMs = timestampMs;
                    return address;
                }
            }

            if (iterator.NextAddress >= tail || !await iterator.WaitAsync(cancellationToken).ConfigureAwait(false))
            {
                return Math.Min(iterator.NextAddress, tail);
            }
        }
    }

    private async ValueTask<PublishOutcome> PublishWhenGateOpensAsync(ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte> payload, byte[] scratch, CancellationToken cancellationToken)
    {
        await _appendGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        return await PublishHoldingGate(key, payload, scratch, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Called with the gate held; releases it when the publish is done, at once or after the log makes room.</summary>
    private ValueTask<PublishOutcome> PublishHoldingGate(ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte> payload, byte[] scratch, CancellationToken cancellationToken)
    {
        var releaseGate = true;
        try
        {
            var nowMs = NextTimestamp();
            if (key.HasValue && _keys is not null && _keys.IsDuplicate(key.Value.Span, nowMs, out var acceptedOffset))
            {
                return ValueTask.FromResult(new PublishOutcome(acceptedOffset, Duplicate: true, DurableAt: Log.TailAddress - 1));
            }

            var keySpan = key.HasValue ? key.Value.Span : default;
            if (LogRecord.SizeOf(keySpan.Length, payload.Length) > Log.MaxRecordSize)
            {
                releaseGate = false;
                return AppendFragmentedAsync(key, payload, nowMs, cancellationToken);
            }

            var length = LogRecord.WriteWhole(scratch, nowMs, key.HasValue, keySpan, payload.Span);
            if (Log.TryAppend(scratch.AsSpan(0, length), out var address))
            {
                Accepted(key, nowMs, address);
                return ValueTask.FromResult(new PublishOutcome(address, Duplicate: false, DurableAt: address));
            }

            releaseGate = false;
            return AppendWhenLogHasRoomAsync(key, scratch, length, nowMs, cancellationToken);
        }
        finally
        {
            if (releaseGate)
            {
                _appendGate.Release();
            }
        }
    }

    /// <summary>The slow path: the gate is already held and the record is in <paramref name="scratch"/>.</summary>
    private async ValueTask<PublishOutcome> AppendWhenLogHasRoomAsync(ReadOnlyMemory<byte>? key, byte[] scratch, int length, long nowMs, CancellationToken cancellationToken)
    {
        try
        {
            var address = await Log.AppendAsync(scratch.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
            Accepted(key, nowMs, address);
            return new PublishOutcome(address, Duplicate: false, DurableAt: address);
        }
        finally
        {
            _appendGate.Release();
        }
    }

    /// <summary>
    /// The path for a message larger than a log page: its fragments are appended back to back while the gate is
    /// held, so no other record can fall between them. Releases the gate.
    /// </summary>
    private async ValueTask<PublishOutcome> AppendFragmentedAsync(ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte> payload, long nowMs, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(Log.MaxRecordSize);
        try
        {
            var keyLength = key?.Length ?? 0;
            var firstPart = Log.MaxRecordSize - LogRecord.HeaderSize - keyLength - LogRecord.FirstFragmentExtra;
            var length = LogRecord.WriteFirst(buffer, nowMs, key.HasValue, key.HasValue ? key.Value.Span : default, payload.Length, payload.Span[..firstPart]);
            var offset = await AppendAsync(buffer, length, cancellationToken).ConfigureAwait(false);
            var last = offset;

            var continuationPart = Log.MaxRecordSize - LogRecord.HeaderSize;
            for (var position = firstPart; position < payload.Length; position += continuationPart)
            {
                var part = payload.Slice(position, Math.Min(continuationPart, payload.Length - position));
                length = LogRecord.WriteContinuation(buffer, nowMs, part.Span);
                last = await AppendAsync(buffer, length, cancellationToken).ConfigureAwait(false);
            }

            Accepted(key, nowMs, offset);
            return new PublishOutcome(offset, Duplicate: false, DurableAt: last);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            _appendGate.Release();
        }
    }

    private ValueTask<long> AppendAsync(byte[] record, int length, CancellationToken cancellationToken) =>
        Log.TryAppend(record.AsSpan(0, length), out var address)
            ? ValueTask.FromResult(address)
            : Log.AppendAsync(record.AsMemory(0, length), cancellationToken);

    private void Accepted(ReadOnlyMemory<byte>? key, long nowMs, long address)
    {
        _committer?.MarkDirty();
        if (key.HasValue && _keys is not null)
        {
            _keys.Accept(key.Value.Span, nowMs, address);
        }
    }

    /// <summary>Now, but never earlier than the previous record's timestamp (the wall clock may step back).</summary>
    private long NextTimestamp()
    {
        var nowMs = Math.Max(NowMs, _lastTimestampMs);
        _lastTimestampMs = nowMs;
        return nowMs;
    }
}
