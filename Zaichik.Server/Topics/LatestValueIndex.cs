using System.Collections.Concurrent;
using Zaichik.Protocol;
using Zaichik.Server.Storage;
using Zaichik.Server.Topics.Internal;

namespace Zaichik.Server.Topics;

/// <summary>
/// The newest message of every key of a topic that keeps the latest value per key (log compaction): key, compared by
/// all its bytes, to that message's sequence, timestamp and whether it is a tombstone. Every reader of the topic's log
/// asks it (<see cref="Skips"/>) which messages to step over: a keyed message whose key has a newer one, a tombstone
/// whose <c>TombstoneRetention</c> has passed, an unkeyed message past the retention TTL. The compaction pass asks it
/// too, and removes a key once its tombstone is removed.
/// </summary>
/// <remarks>
/// Written under the topic's gate (publishes, the compaction pass's removals), read by any reader at any time. It holds
/// every key of every message stored up to <see cref="IndexedUpTo"/>, so a keyed message at or below it whose key it
/// does not hold belongs to a deleted key; one above it is being appended and is the newest of its key.
/// </remarks>
internal sealed class LatestValueIndex : IMessageFilter
{
    private readonly ConcurrentDictionary<byte[], Entry> _keys = new(ByteArrayComparer.Instance);
    private readonly ConcurrentDictionary<byte[], Entry>.AlternateLookup<ReadOnlySpan<byte>> _lookup;
    private readonly long _retentionTtlMs;
    private readonly long _tombstoneRetentionMs;
    private readonly TimeProvider _time;
    private long _indexedUpTo;
    private long _compactedExpiryMs = long.MaxValue;
    private long _pendingExpiryMs = long.MaxValue;

    /// <param name="retentionTtlMs">The topic's retention, for unkeyed messages; 0 for none.</param>
    /// <param name="tombstoneRetentionMs">How long a tombstone is delivered after its timestamp.</param>
    public LatestValueIndex(long retentionTtlMs, long tombstoneRetentionMs, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tombstoneRetentionMs);
        _retentionTtlMs = retentionTtlMs;
        _tombstoneRetentionMs = tombstoneRetentionMs;
        _time = time;
        _lookup = _keys.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    /// <summary>Keys the topic holds (deleted keys whose tombstone is still stored included).</summary>
    public int Count => _keys.Count;

    /// <summary>Every message up to this sequence is in the index.</summary>
    public long IndexedUpTo => Volatile.Read(ref _indexedUpTo);

    /// <summary>
    /// The earliest time at which a message the index knows to be stored becomes one to remove (a tombstone's retention
    /// or an unkeyed message's TTL runs out); long.MaxValue for none. The sweep compacts when it has passed.
    /// </summary>
    public long NextExpiryMs => Math.Min(Volatile.Read(ref _compactedExpiryMs), Volatile.Read(ref _pendingExpiryMs));

    /// <summary>Records a stored message; under the topic's gate, in sequence order.</summary>
    public void Accept(bool hasKey, ReadOnlySpan<byte> key, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> headers, long sequence, long timestampMs)
    {
        if (hasKey)
        {
            var tombstone = Tombstone.Is(true, payload, headers);
            _lookup[key] = new Entry(sequence, timestampMs, tombstone);
            if (tombstone)
            {
                NotePending(timestampMs + _tombstoneRetentionMs);
            }
        }
        else if (_retentionTtlMs > 0)
        {
            NotePending(timestampMs + _retentionTtlMs);
        }

        Volatile.Write(ref _indexedUpTo, sequence);
    }

    /// <summary>Records a message found when the topic opens, reading everything stored in sequence order.</summary>
    public void Restore(LogMessage message)
    {
        if (message.HasKey && (!_lookup.TryGetValue(message.Key, out var known) || known.Sequence < message.Sequence))
        {
            _lookup[message.Key] = new Entry(message.Sequence, message.TimestampMs, Tombstone.Is(true, message.Payload, message.Headers));
        }

        if (ExpiryOf(message) is var expiry and < long.MaxValue)
        {
            NotePending(expiry);
        }
    }

    /// <summary>Every message up to <paramref name="sequence"/> was restored.</summary>
    public void Restored(long sequence) => Volatile.Write(ref _indexedUpTo, sequence);

    /// <summary>
    /// True when a newer message with <paramref name="key"/> is stored, or the key was deleted: the message at
    /// <paramref name="sequence"/> is no longer its latest value.
    /// </summary>
    public bool IsSuperseded(ReadOnlySpan<byte> key, long sequence) =>
        sequence <= Volatile.Read(ref _indexedUpTo) && (!_lookup.TryGetValue(key, out var entry) || entry.Sequence > sequence);

    /// <summary>True when <paramref name="message"/> is a tombstone whose retention has run out at <paramref name="nowMs"/>.</summary>
    public bool IsExpiredTombstone(LogMessage message, long nowMs) =>
        Tombstone.Is(message.HasKey, message.Payload, message.Headers) && nowMs - message.TimestampMs >= _tombstoneRetentionMs;

    /// <summary>When <paramref name="message"/> stops being delivered for its age (a tombstone, an unkeyed one with a TTL), or long.MaxValue.</summary>
    public long ExpiryOf(LogMessage message) =>
        message.HasKey
            ? Tombstone.Is(true, message.Payload, message.Headers) ? message.TimestampMs + _tombstoneRetentionMs : long.MaxValue
            : _retentionTtlMs > 0 ? message.TimestampMs + _retentionTtlMs : long.MaxValue;

    public bool Skips(LogMessage message)
    {
        if (message.HasKey)
        {
            return IsSuperseded(message.Key, message.Sequence)
                || (Tombstone.Is(true, message.Payload, message.Headers) && Now - message.TimestampMs >= _tombstoneRetentionMs);
        }

        return _retentionTtlMs > 0 && Now - message.TimestampMs >= _retentionTtlMs;
    }

    /// <summary>Forgets <paramref name="key"/> if its newest message is still <paramref name="sequence"/> (compaction removed it); under the topic's gate.</summary>
    public void Forget(byte[] key, long sequence)
    {
        if (_keys.TryGetValue(key, out var entry) && entry.Sequence == sequence)
        {
            _keys.TryRemove(KeyValuePair.Create(key, entry));
        }
    }

    /// <summary>
    /// What a compaction pass starts from: the expiries noted since the last one are handed to it (it sees those
    /// messages, unless they were not yet durable: see <see cref="PassEnded"/>).
    /// </summary>
    public long TakePendingExpiry() => Interlocked.Exchange(ref _pendingExpiryMs, long.MaxValue);

    /// <summary>
    /// A pass ended: <paramref name="compactedExpiryMs"/> is the earliest expiry among what it kept, and
    /// <paramref name="carriedExpiryMs"/> what it took and may have left in the log.
    /// </summary>
    public void PassEnded(long compactedExpiryMs, long carriedExpiryMs)
    {
        Volatile.Write(ref _compactedExpiryMs, compactedExpiryMs);
        NotePending(carriedExpiryMs);
    }

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private void NotePending(long expiryMs)
    {
        var current = Volatile.Read(ref _pendingExpiryMs);
        while (expiryMs < current)
        {
            var seen = Interlocked.CompareExchange(ref _pendingExpiryMs, expiryMs, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    private readonly record struct Entry(long Sequence, long TimestampMs, bool Tombstone);
}
