using Zaichik.Protocol;
using Zaichik.Server.Sessions.Internal;

namespace Zaichik.Server.Subscriptions;

/// <summary>
/// Shared tail reading: one topic's live subscribers that have caught up with its tail take new messages from here
/// instead of each following the log with a reader of its own. The publish that stores a message encodes its Message
/// frame once (only while someone is attached); one dispatcher, a single thread-pool work item per batch, hands each
/// batch to every attached subscriber as one contiguous write. A subscriber that cannot take a batch whole at once
/// (its connection is still writing, its window is full, it missed a message, a message expired) is detached and goes
/// back to a log reader of its own from the first message it did not get, and attaches again once it has caught up.
/// So a delivery costs a copy into the connection's output, and a topic with 10,000 subscribers reads and encodes each
/// message once, not 10,000 times.
/// </summary>
/// <remarks>
/// Order: publishes call <see cref="Appended"/> in sequence order (the topic's gate), batches are dispatched one at a
/// time, and each subscriber checks every batch against the next sequence it expects, so nothing is delivered twice
/// or out of order, and a gap detaches it rather than skipping a message.
/// </remarks>
internal sealed class TailFeed : IThreadPoolWorkItem
{
    /// <summary>Most bytes of frames handed to subscribers as one batch.</summary>
    internal const int MaxBatchBytes = 64 * 1024;

    /// <summary>
    /// Default of the most bytes of frames waiting for the dispatcher (<c>MaxTailFeedBytes</c>). Past it, publishes
    /// stop encoding, and the dispatcher detaches every subscriber attached then once it has handed out what it holds:
    /// each reads the rest from the log, so a dispatcher that falls behind costs readers, not memory, and no message
    /// is left undelivered when publishes stop right after. 4 MiB: with 1 MiB, a burst of 20,000 msgs/s to 1,000
    /// subscribers (PeerBench's W6) overran it and sent them all to readers of their own, which took 1.6–1.8× as long to
    /// deliver at 2.5–3× the CPU per delivery and more memory.
    /// </summary>
    internal const int DefaultMaxPendingBytes = 4 * 1024 * 1024;

    /// <summary>
    /// Most subscribers a feed hands a batch to on the publishing connection's own thread, at the end of its read; a
    /// feed with more is dispatched by a thread-pool work item, so a wide fan-out does not hold up the publisher.
    /// </summary>
    internal const int InlineDispatchLimit = 8;

    [ThreadStatic]
    private static bool t_deferring;

    [ThreadStatic]
    private static List<TailFeed>? t_deferred;

    private readonly Lock _lock = new();
    private readonly byte[] _topicName;
    private readonly Func<long> _nowMs;
    private readonly int _maxPendingBytes;
    private bool _overflowed;
    private FeedBatch _pending = new();
    private FeedBatch _spare = new();
    private Subscription[] _subscribers = [];
    private int _attached;
    private long _lastAppended;
    private bool _scheduled;
    private long _batches;
    private long _overflows;

    public TailFeed(byte[] topicName, Func<long> nowMs, long lastSequence, int maxPendingBytes = DefaultMaxPendingBytes)
    {
        _maxPendingBytes = maxPendingBytes;
        _topicName = topicName;
        _nowMs = nowMs;
        _lastAppended = lastSequence;
    }

    /// <summary>Subscribers attached now.</summary>
    public int Attached => Volatile.Read(ref _attached);

    /// <summary>Batches dispatched so far.</summary>
    public long Batches => Volatile.Read(ref _batches);

    /// <summary>How often publishes outran the dispatcher by <c>MaxTailFeedBytes</c> and the attached subscribers went back to the log.</summary>
    public long Overflows => Volatile.Read(ref _overflows);

    /// <summary>
    /// Called by the publish that stored message <paramref name="sequence"/>, in sequence order, after the log holds it.
    /// Costs an exchange when nobody is attached.
    /// </summary>
    /// <param name="nextAddress">The log's tail after the message: where a reader goes on after it.</param>
    public void Appended(long sequence, long timestampMs, long nextAddress, ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte> payload, ReadOnlyMemory<byte> headers)
    {
        // The exchange is a full fence: a subscriber attaching now either is counted here, or sees this sequence.
        Interlocked.Exchange(ref _lastAppended, sequence);
        if (Volatile.Read(ref _attached) == 0)
        {
            return;
        }

        var schedule = false;
        lock (_lock)
        {
            if (_subscribers.Length == 0)
            {
                return;
            }

            if (_pending.Frames.WrittenCount >= _maxPendingBytes)
            {
                // The subscribers attached now miss this message here: the dispatcher detaches them after what it holds.
                _overflowed = true;
                schedule = !_scheduled;
                _scheduled = true;
            }
            else
            {
                FrameWriter.WriteMessage(_pending.Frames, _topicName, sequence, timestampMs, key.HasValue, key.HasValue ? key.Value.Span : default, payload.Span, headers.Span);
                _pending.Entries.Add(new FeedEntry(sequence, timestampMs, nextAddress, _pending.Frames.WrittenCount));
                if (!_scheduled)
                {
                    _scheduled = true;
                    schedule = true;
                }
            }
        }

        if (schedule)
        {
            if (t_deferring)
            {
                (t_deferred ??= []).Add(this);
            }
            else
            {
                ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
            }
        }
    }

    /// <summary>
    /// From here on this thread's publishes leave their dispatch to <see cref="RunDeferred"/>: a connection's read loop
    /// calls it before handling a read, so the read's messages go out as one batch, without a thread hop, after its replies.
    /// </summary>
    public static void DeferDispatch() => t_deferring = true;

    /// <summary>
    /// Ends <see cref="DeferDispatch"/> on this thread and dispatches what it deferred: here for a feed with at most
    /// <see cref="InlineDispatchLimit"/> subscribers, by the thread pool otherwise. Must run before the thread does
    /// anything else, which the read loop ensures (it is called before every wait and in a finally).
    /// </summary>
    public static void RunDeferred()
    {
        t_deferring = false;
        if (t_deferred is not { Count: > 0 } deferred)
        {
            return;
        }

        try
        {
            foreach (var feed in deferred)
            {
                if (feed.Attached <= InlineDispatchLimit)
                {
                    ((IThreadPoolWorkItem)feed).Execute();
                }
                else
                {
                    ThreadPool.UnsafeQueueUserWorkItem(feed, preferLocal: false);
                }
            }
        }
        finally
        {
            deferred.Clear();
        }
    }

    /// <summary>
    /// Attaches <paramref name="subscriber"/>, whose next message is <paramref name="nextSequence"/>, if it has every
    /// message the feed has seen (or one more, read from the log before the feed heard of it); false when it is behind.
    /// </summary>
    public bool TryAttach(Subscription subscriber, long nextSequence)
    {
        lock (_lock)
        {
            Interlocked.Increment(ref _attached);
            var last = Volatile.Read(ref _lastAppended);
            if (nextSequence != last + 1 && nextSequence != last + 2)
            {
                Interlocked.Decrement(ref _attached);
                return false;
            }

            _subscribers = [.. _subscribers, subscriber];
            return true;
        }
    }

    /// <summary>Detaches <paramref name="subscriber"/>; nothing more is handed to it.</summary>
    public void Detach(Subscription subscriber)
    {
        lock (_lock)
        {
            var index = Array.IndexOf(_subscribers, subscriber);
            if (index < 0)
            {
                return;
            }

            _subscribers = [.. _subscribers.AsSpan(0, index), .. _subscribers.AsSpan(index + 1)];
            Interlocked.Decrement(ref _attached);
            if (_subscribers.Length == 0)
            {
                _pending.Reset();
                _overflowed = false;
            }
        }
    }

    /// <summary>The dispatcher: hands what is pending to every attached subscriber, a batch at a time, until nothing is.</summary>
    void IThreadPoolWorkItem.Execute()
    {
        while (true)
        {
            FeedBatch batch;
            Subscription[] subscribers;
            bool overflowed;
            lock (_lock)
            {
                if (_pending.Entries.Count == 0 && !_overflowed)
                {
                    _scheduled = false;
                    return;
                }

                batch = _pending;
                _pending = _spare;
                subscribers = _subscribers;
                overflowed = _overflowed;
                _overflowed = false;
            }

            var nowMs = _nowMs();
            var from = 0;
            while (from < batch.Entries.Count)
            {
                // Whole frames up to MaxBatchBytes (at least one).
                var start = from == 0 ? 0 : batch.Entries[from - 1].End;
                var to = from + 1;
                while (to < batch.Entries.Count && batch.Entries[to].End - start <= MaxBatchBytes)
                {
                    to++;
                }

                var slice = new FeedSlice(batch, from, to);
                foreach (var subscriber in subscribers)
                {
                    subscriber.DeliverFromFeed(slice, nowMs);
                }

                Interlocked.Increment(ref _batches);
                from = to;
            }

            if (overflowed)
            {
                // Messages were published that this batch does not hold: whoever was attached reads them from the log.
                Interlocked.Increment(ref _overflows);
                foreach (var subscriber in subscribers)
                {
                    subscriber.LeaveFeed();
                }
            }

            // Every write copied its frames before returning, so the buffer can take the next batch.
            batch.Reset();
            lock (_lock)
            {
                _spare = batch;
            }
        }
    }
}

/// <summary>One encoded message of a <see cref="FeedBatch"/>: its frame ends at <see cref="End"/>.</summary>
internal readonly record struct FeedEntry(long Sequence, long TimestampMs, long NextAddress, int End);

/// <summary>Frames the publishes encoded since the dispatcher last took them, back to back, and what each one is.</summary>
internal sealed class FeedBatch
{
    public PooledBufferWriter Frames { get; } = new();

    public List<FeedEntry> Entries { get; } = [];

    public void Reset()
    {
        Frames.Reset();
        Entries.Clear();
    }
}

/// <summary>Entries <see cref="From"/> to <see cref="To"/> (exclusive) of a batch: what one dispatch hands out.</summary>
internal readonly struct FeedSlice(FeedBatch batch, int from, int to)
{
    public int From => from;

    public int To => to;

    public FeedEntry this[int index] => batch.Entries[index];

    /// <summary>The frames of entries <paramref name="first"/> to <paramref name="last"/> (inclusive), back to back.</summary>
    public ReadOnlyMemory<byte> Frames(int first, int last)
    {
        var start = first == 0 ? 0 : batch.Entries[first - 1].End;
        return batch.Frames.WrittenMemory[start..batch.Entries[last].End];
    }
}
