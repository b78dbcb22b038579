using Zaichik.Server.Topics.Internal;

namespace Zaichik.Server.Topics;

/// <summary>
/// The compaction window of one topic: for each key accepted within the last <c>windowMs</c>, when it was
/// accepted and at which sequence. A key is a duplicate while <c>now - acceptedAt &lt; windowMs</c>. Keys leave
/// the index in acceptance order once their window has passed, so memory is bounded by the keys accepted
/// within one window. Not thread-safe: the owning topic serialises access.
/// </summary>
internal sealed class CompactionIndex
{
    private readonly long _windowMs;
    private readonly Dictionary<byte[], KeyState> _keys = new(ByteArrayComparer.Instance);
    private readonly Dictionary<byte[], KeyState>.AlternateLookup<ReadOnlySpan<byte>> _lookup;
    private readonly Queue<Acceptance> _acceptances = new();

    public CompactionIndex(long windowMs)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(windowMs);
        _windowMs = windowMs;
        _lookup = _keys.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    /// <summary>Keys currently remembered.</summary>
    public int Count => _keys.Count;

    /// <summary>True when <paramref name="key"/> was accepted less than the window ago; gives that message's sequence.</summary>
    public bool IsDuplicate(ReadOnlySpan<byte> key, long nowMs, out long acceptedSequence)
    {
        if (_lookup.TryGetValue(key, out var state) && nowMs - state.AcceptedAtMs < _windowMs)
        {
            acceptedSequence = state.Sequence;
            return true;
        }

        acceptedSequence = 0;
        return false;
    }

    /// <summary>Records that a message with <paramref name="key"/> was stored with <paramref name="sequence"/>.</summary>
    public void Accept(ReadOnlySpan<byte> key, long nowMs, long sequence)
    {
        // Keep the index from growing between sweeps: retire up to two stale keys per acceptance.
        Sweep(nowMs, maxRemovals: 2);

        if (!_lookup.TryGetValue(key, out var storedKey, out _))
        {
            storedKey = key.ToArray();
        }

        _keys[storedKey] = new KeyState(nowMs, sequence);
        _acceptances.Enqueue(new Acceptance(storedKey, nowMs));
    }

    /// <summary>Forgets keys whose window has passed; returns how many were removed.</summary>
    public int Sweep(long nowMs, int maxRemovals = int.MaxValue)
    {
        var removed = 0;
        while (removed < maxRemovals
            && _acceptances.TryPeek(out var oldest)
            && nowMs - oldest.AcceptedAtMs >= _windowMs)
        {
            _acceptances.Dequeue();

            // Only the key's latest acceptance may remove it; older queue entries for a re-accepted key are stale.
            if (_keys.TryGetValue(oldest.Key, out var state) && state.AcceptedAtMs == oldest.AcceptedAtMs)
            {
                _keys.Remove(oldest.Key);
                removed++;
            }
        }

        return removed;
    }

    private readonly record struct KeyState(long AcceptedAtMs, long Sequence);

    private readonly record struct Acceptance(byte[] Key, long AcceptedAtMs);
}
