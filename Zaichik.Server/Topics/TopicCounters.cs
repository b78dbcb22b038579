namespace Zaichik.Server.Topics;

/// <summary>
/// What one topic has done since the broker started: kept for the topic's lifetime (open or closed), read by the
/// broker state model and the <c>Zaichik.Server</c> Meter. Publish counts are written under the topic's gate; delivery
/// counts are added once per delivered batch by the subscriptions' pumps.
/// </summary>
internal sealed class TopicCounters
{
    private long _messagesIn;
    private long _bytesIn;
    private long _duplicates;
    private long _repeats;
    private long _messagesOut;
    private long _bytesOut;
    private long _expired;
    private long _trimmed;
    private long _redelivered;
    private long _deadLettered;
    private long _compacted;

    /// <summary>Messages stored.</summary>
    public long MessagesIn => Volatile.Read(ref _messagesIn);

    /// <summary>Payload, key and header bytes of the messages stored.</summary>
    public long BytesIn => Volatile.Read(ref _bytesIn);

    /// <summary>Publishes dropped as duplicates of a key inside the compaction window.</summary>
    public long Duplicates => Volatile.Read(ref _duplicates);

    /// <summary>Publishes an idempotent producer sent again, answered with the original's Ack.</summary>
    public long Repeats => Volatile.Read(ref _repeats);

    /// <summary>Message deliveries to subscribers.</summary>
    public long MessagesOut => Volatile.Read(ref _messagesOut);

    /// <summary>Bytes of the Message frames delivered.</summary>
    public long BytesOut => Volatile.Read(ref _bytesOut);

    /// <summary>Messages removed because their retention ran out.</summary>
    public long Expired => Volatile.Read(ref _expired);

    /// <summary>Deliveries of consumer groups that were not a message's first (after an ack timeout, a Nack or a member leaving).</summary>
    public long Redelivered => Volatile.Read(ref _redelivered);

    /// <summary>Messages consumer groups gave up on after MaxDeliver deliveries (moved to a dead-letter topic or dropped).</summary>
    public long DeadLettered => Volatile.Read(ref _deadLettered);

    /// <summary>From a group's pump.</summary>
    public void Redelivery(int count) => Interlocked.Add(ref _redelivered, count);

    /// <summary>From a group's pump.</summary>
    public void DeadLetter() => Interlocked.Increment(ref _deadLettered);

    /// <summary>Under the topic's gate.</summary>
    public void Stored(int bytes)
    {
        Volatile.Write(ref _messagesIn, _messagesIn + 1);
        Volatile.Write(ref _bytesIn, _bytesIn + bytes);
    }

    /// <summary>Under the topic's gate.</summary>
    public void Duplicate() => Volatile.Write(ref _duplicates, _duplicates + 1);

    /// <summary>Under the topic's gate.</summary>
    public void Repeat() => Volatile.Write(ref _repeats, _repeats + 1);

    /// <summary>From any pump.</summary>
    public void Delivered(int messages, int bytes)
    {
        Interlocked.Add(ref _messagesOut, messages);
        Interlocked.Add(ref _bytesOut, bytes);
    }

    /// <summary>Messages removed because the topic's MaxMessages or MaxBytes was exceeded.</summary>
    public long Trimmed => Volatile.Read(ref _trimmed);

    /// <summary>Under the topic's gate.</summary>
    public void ExpiredRemoved(long messages) => Interlocked.Add(ref _expired, messages);

    /// <summary>Under the topic's gate.</summary>
    public void TrimmedRemoved(long messages) => Interlocked.Add(ref _trimmed, messages);

    /// <summary>Messages removed by log compaction: superseded values, values of deleted keys, and tombstones whose retention ran out.</summary>
    public long Compacted => Volatile.Read(ref _compacted);

    /// <summary>Under the topic's gate.</summary>
    public void CompactedRemoved(long messages) => Interlocked.Add(ref _compacted, messages);
}
