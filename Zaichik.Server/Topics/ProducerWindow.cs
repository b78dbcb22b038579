using Zaichik.Server.Storage;

namespace Zaichik.Server.Topics;

/// <summary>
/// The idempotent producers of one topic: for each producer id, the producer sequences the topic stored within the
/// last window and the message sequence each got, so that a publish sent again (after a reconnect) is answered with
/// the original's Ack instead of being stored twice, as Kafka's idempotent producer does. Bounded three ways: a
/// publish is forgotten once it was accepted a window ago, a producer keeps only its newest
/// <see cref="ProducerWindowOptions.MaxPublishesPerProducer"/> publishes, and past
/// <see cref="ProducerWindowOptions.MaxProducers"/> producers the least recently active one is forgotten whole.
/// Rebuilt from the log when the topic opens (every record carries its producer). Not thread-safe: the owning topic
/// serialises access.
/// </summary>
internal sealed class ProducerWindow
{
    private readonly long _windowMs;
    private readonly int _maxPerProducer;
    private readonly int _maxProducers;
    private readonly Dictionary<ulong, Producer> _producers = [];

    // Producers by last activity, a doubly linked list through the producers themselves: no allocation to reorder.
    private Producer? _mostRecent;
    private Producer? _leastRecent;

    public ProducerWindow(ProducerWindowOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.Window, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxPublishesPerProducer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxProducers);
        _windowMs = (long)options.Window.TotalMilliseconds;
        _maxPerProducer = options.MaxPublishesPerProducer;
        _maxProducers = options.MaxProducers;
    }

    /// <summary>How far back, in ms, a publish is remembered.</summary>
    public long WindowMs => _windowMs;

    /// <summary>Producers remembered now.</summary>
    public int ProducerCount => _producers.Count;

    /// <summary>Publishes remembered now for <paramref name="producerId"/> (some may have expired and not yet been dropped).</summary>
    public int CountOf(ulong producerId) => _producers.TryGetValue(producerId, out var producer) ? producer.Count : 0;

    /// <summary>
    /// True when the publish <paramref name="stamp"/> names was stored less than the window ago and is still remembered;
    /// gives the sequence it was stored with.
    /// </summary>
    public bool TryGetStored(ProducerStamp stamp, long nowMs, out long sequence)
    {
        if (_producers.TryGetValue(stamp.ProducerId, out var producer)
            && producer.TryFind(stamp.Sequence, out var stored)
            && nowMs - stored.AcceptedAtMs < _windowMs)
        {
            sequence = stored.MessageSequence;
            return true;
        }

        sequence = 0;
        return false;
    }

    /// <summary>Records that the publish <paramref name="stamp"/> names was stored with <paramref name="sequence"/> at <paramref name="nowMs"/>.</summary>
    public void Accept(ProducerStamp stamp, long nowMs, long sequence)
    {
        // Keep idle producers from piling up between sweeps.
        Sweep(nowMs, maxRemovals: 2);

        if (_producers.TryGetValue(stamp.ProducerId, out var producer))
        {
            Unlink(producer);
        }
        else
        {
            if (_producers.Count >= _maxProducers)
            {
                Forget(_leastRecent!);
            }

            producer = new Producer(stamp.ProducerId);
            _producers.Add(stamp.ProducerId, producer);
        }

        producer.LastActiveMs = Math.Max(producer.LastActiveMs, nowMs);
        LinkAsMostRecent(producer);
        producer.Add(new Stored(stamp.Sequence, sequence, nowMs), nowMs, _windowMs, _maxPerProducer);
    }

    /// <summary>
    /// Adds to <paramref name="block"/> every remembered publish, still inside the window at <paramref name="nowMs"/>,
    /// stored with a sequence in [<paramref name="fromSequence"/>, <paramref name="toSequence"/>): what the window must
    /// still remember of messages the log is about to let go. Looks at every remembered publish (they are bounded by
    /// <see cref="ProducerWindowOptions"/>); a producer's are in its own numbering's order, which a producer that numbers
    /// oddly does not keep in sequence order.
    /// </summary>
    public void CollectStored(long fromSequence, long toSequence, long nowMs, WindowBlock block)
    {
        foreach (var producer in _producers.Values)
        {
            producer.Collect(fromSequence, toSequence, nowMs - _windowMs, block);
        }
    }

    /// <summary>Forgets producers with nothing accepted within the window; returns how many were removed.</summary>
    public int Sweep(long nowMs, int maxRemovals = int.MaxValue)
    {
        var removed = 0;
        while (removed < maxRemovals && _leastRecent is { } oldest && nowMs - oldest.LastActiveMs >= _windowMs)
        {
            Forget(oldest);
            removed++;
        }

        return removed;
    }

    private void Forget(Producer producer)
    {
        Unlink(producer);
        _producers.Remove(producer.Id);
    }

    private void LinkAsMostRecent(Producer producer)
    {
        producer.LessRecent = _mostRecent;
        producer.MoreRecent = null;
        if (_mostRecent is not null)
        {
            _mostRecent.MoreRecent = producer;
        }

        _mostRecent = producer;
        _leastRecent ??= producer;
    }

    private void Unlink(Producer producer)
    {
        if (producer.MoreRecent is { } more)
        {
            more.LessRecent = producer.LessRecent;
        }
        else if (ReferenceEquals(_mostRecent, producer))
        {
            _mostRecent = producer.LessRecent;
        }

        if (producer.LessRecent is { } less)
        {
            less.MoreRecent = producer.MoreRecent;
        }
        else if (ReferenceEquals(_leastRecent, producer))
        {
            _leastRecent = producer.MoreRecent;
        }

        producer.MoreRecent = null;
        producer.LessRecent = null;
    }

    /// <summary>One stored publish: the producer's number for it, the sequence it got, and when it was accepted.</summary>
    private readonly record struct Stored(ulong ProducerSequence, long MessageSequence, long AcceptedAtMs);

    /// <summary>
    /// One producer's remembered publishes, a ring ordered by producer sequence. A producer numbers its publishes in the
    /// order it sends them, so a new one nearly always goes at the end and a lookup is a binary search; the ring grows
    /// by doubling up to its bound, so a steady producer allocates nothing.
    /// </summary>
    private sealed class Producer(ulong id)
    {
        private Stored[] _ring = new Stored[4];
        private int _head;

        public ulong Id { get; } = id;

        public int Count { get; private set; }

        public long LastActiveMs { get; set; } = long.MinValue;

        public Producer? MoreRecent { get; set; }

        public Producer? LessRecent { get; set; }

        public bool TryFind(ulong producerSequence, out Stored stored)
        {
            var index = Search(producerSequence);
            if (index >= 0)
            {
                stored = At(index);
                return true;
            }

            stored = default;
            return false;
        }

        public void Add(Stored stored, long nowMs, long windowMs, int max)
        {
            // Publishes accepted a window ago are dead weight; they are accepted in order, so they sit at the front.
            while (Count > 0 && nowMs - At(0).AcceptedAtMs >= windowMs)
            {
                DropFirst();
            }

            if (Count == 0 || stored.ProducerSequence > At(Count - 1).ProducerSequence)
            {
                if (Count == max)
                {
                    DropFirst();
                }

                Grow();
                _ring[Slot(Count)] = stored;
                Count++;
                return;
            }

            // Out of order: a repeat stored again after its window, or a producer numbering oddly. Rare; kept sorted.
            var index = Search(stored.ProducerSequence);
            if (index >= 0)
            {
                _ring[Slot(index)] = stored;
                return;
            }

            if (Count == max)
            {
                DropFirst();
                if (Count > 0 && stored.ProducerSequence < At(0).ProducerSequence)
                {
                    // Older than everything the bound keeps: it would be the next to go.
                    return;
                }
            }

            Grow();
            var at = ~Search(stored.ProducerSequence);
            for (var i = Count; i > at; i--)
            {
                _ring[Slot(i)] = _ring[Slot(i - 1)];
            }

            _ring[Slot(at)] = stored;
            Count++;
        }

        public void Collect(long fromSequence, long toSequence, long acceptedAfterMs, WindowBlock block)
        {
            for (var i = 0; i < Count; i++)
            {
                var stored = At(i);
                if (stored.MessageSequence >= fromSequence && stored.MessageSequence < toSequence && stored.AcceptedAtMs > acceptedAfterMs)
                {
                    block.Add(stored.MessageSequence, stored.AcceptedAtMs, hasKey: false, default, new ProducerStamp(Id, stored.ProducerSequence));
                }
            }
        }

        private Stored At(int index) => _ring[Slot(index)];

        private int Slot(int index)
        {
            var slot = _head + index;
            return slot >= _ring.Length ? slot - _ring.Length : slot;
        }

        private void DropFirst()
        {
            _head = Slot(1);
            Count--;
        }

        /// <summary>Makes room for one more.</summary>
        private void Grow()
        {
            if (Count < _ring.Length)
            {
                return;
            }

            var larger = new Stored[_ring.Length * 2];
            for (var i = 0; i < Count; i++)
            {
                larger[i] = At(i);
            }

            _ring = larger;
            _head = 0;
        }

        /// <summary>The index of <paramref name="producerSequence"/>, or the complement of where it would go.</summary>
        private int Search(ulong producerSequence)
        {
            var (low, high) = (0, Count - 1);
            while (low <= high)
            {
                var middle = low + ((high - low) / 2);
                var found = At(middle).ProducerSequence;
                if (found == producerSequence)
                {
                    return middle;
                }

                if (found < producerSequence)
                {
                    low = middle + 1;
                }
                else
                {
                    high = middle - 1;
                }
            }

            return ~low;
        }
    }
}
