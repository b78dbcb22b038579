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

    // Acceptances in order (so by sequence and by time), a ring that grows by doubling: the oldest at _head.
    private Acceptance[] _acceptances = new Acceptance[16];
    private int _head;
    private int _count;

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
        if (_count == _acceptances.Length)
        {
            var larger = new Acceptance[_acceptances.Length * 2];
            for (var i = 0; i < _count; i++)
            {
                larger[i] = At(i);
            }

            (_acceptances, _head) = (larger, 0);
        }

        _acceptances[Slot(_count)] = new Acceptance(storedKey, nowMs, sequence);
        _count++;
    }

    /// <summary>Forgets keys whose window has passed; returns how many were removed.</summary>
    public int Sweep(long nowMs, int maxRemovals = int.MaxValue)
    {
        var removed = 0;
        while (removed < maxRemovals && _count > 0 && nowMs - At(0).AcceptedAtMs >= _windowMs)
        {
            var oldest = At(0);
            _acceptances[_head] = default;
            _head = Slot(1);
            _count--;

            // Only the key's latest acceptance may remove it; older entries for a re-accepted key are stale.
            if (_keys.TryGetValue(oldest.Key, out var state) && state.AcceptedAtMs == oldest.AcceptedAtMs)
            {
                _keys.Remove(oldest.Key);
                removed++;
            }
        }

        return removed;
    }

    /// <summary>
    /// Adds to <paramref name="block"/> every key whose latest acceptance, still inside the window at
    /// <paramref name="nowMs"/>, has a sequence in [<paramref name="fromSequence"/>, <paramref name="toSequence"/>): what
    /// the window must still remember of messages the log is about to let go.
    /// </summary>
    public void CollectAccepted(long fromSequence, long toSequence, long nowMs, Storage.WindowBlock block)
    {
        // Acceptances are in sequence order: the first one at or after fromSequence by binary search.
        var (low, high) = (0, _count);
        while (low < high)
        {
            var middle = low + ((high - low) / 2);
            if (At(middle).Sequence < fromSequence)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }

        for (var i = low; i < _count && At(i) is var acceptance && acceptance.Sequence < toSequence; i++)
        {
            if (nowMs - acceptance.AcceptedAtMs < _windowMs
                && _keys.TryGetValue(acceptance.Key, out var state)
                && state.Sequence == acceptance.Sequence)
            {
                block.Add(acceptance.Sequence, acceptance.AcceptedAtMs, hasKey: true, acceptance.Key, Storage.ProducerStamp.None);
            }
        }
    }

    private Acceptance At(int index) => _acceptances[Slot(index)];

    private int Slot(int index)
    {
        var slot = _head + index;
        return slot >= _acceptances.Length ? slot - _acceptances.Length : slot;
    }

    private readonly record struct KeyState(long AcceptedAtMs, long Sequence);

    private readonly record struct Acceptance(byte[] Key, long AcceptedAtMs, long Sequence);
}
