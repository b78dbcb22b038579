using Zaichik.Protocol;

namespace Zaichik.Client;

/// <summary>Settings of a topic, fixed when it is created. Times are sent as whole milliseconds.</summary>
public sealed record TopicOptions
{
    /// <summary>No retention and no compaction: messages go to current subscribers only.</summary>
    public static TopicOptions Default { get; } = new();

    /// <summary>
    /// How long each message is kept for subscribers that start from <see cref="Zaichik.Protocol.StartPosition.Retained"/>.
    /// <see cref="TimeSpan.Zero"/> (the default) keeps nothing.
    /// </summary>
    public TimeSpan RetentionTtl { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// A keyed message published within this window after another with the same key is dropped as a duplicate.
    /// <see cref="TimeSpan.Zero"/> (the default) turns compaction off.
    /// </summary>
    public TimeSpan CompactionWindow { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// When published messages reach the disk: <see cref="Durability.Always"/> (acknowledged only once committed),
    /// <see cref="Durability.Interval"/> (acknowledged once appended, committed every <see cref="CommitInterval"/>) or
    /// <see cref="Durability.Memory"/> (never written). <see cref="Durability.ServerDefault"/> (the default) takes the server's.
    /// </summary>
    public Durability Durability { get; init; } = Durability.ServerDefault;

    /// <summary>For <see cref="Durability.Interval"/>: the commit period. <see cref="TimeSpan.Zero"/> (the default) takes the server's.</summary>
    public TimeSpan CommitInterval { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// Most messages the topic keeps: past it the oldest are removed (at the server's next sweep, every second by default),
    /// whoever still wanted them. 0 (the default): no limit. Beside <see cref="RetentionTtl"/>: whichever removes more.
    /// </summary>
    public long MaxMessages { get; init; }

    /// <summary>
    /// Most bytes of log the topic keeps (counted in log pages, so up to a page more): past it the oldest messages are
    /// removed at the server's next sweep. 0 (the default): no limit.
    /// </summary>
    public long MaxBytes { get; init; }

    /// <summary>
    /// Keep only the newest message of each key (Kafka's log compaction): a subscriber from the start, a durable consumer
    /// resuming, anyone reading a keyed message after a newer one with its key was stored, skips it; the newest is kept
    /// whatever <see cref="RetentionTtl"/> says, and older ones are removed from disk by the server's background compaction.
    /// Unkeyed messages follow <see cref="RetentionTtl"/> (without one, a new subscriber gets only those published after
    /// it subscribes). Publish a tombstone (<see cref="ZaichikClient.PublishTombstoneAsync(string, string, CancellationToken)"/>)
    /// to delete a key. Beside <see cref="CompactionWindow"/>, which drops repeats of a key before they are stored.
    /// </summary>
    public bool KeepLatestPerKey { get; init; }

    /// <summary>
    /// With <see cref="KeepLatestPerKey"/>: how long a tombstone is delivered after it was published, before it and its
    /// key are gone. <see cref="TimeSpan.Zero"/> (the default) takes the server's (24 hours unless configured).
    /// </summary>
    public TimeSpan TombstoneRetention { get; init; } = TimeSpan.Zero;

    internal void Validate()
    {
        if (RetentionTtl < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(RetentionTtl), RetentionTtl, "RetentionTtl must not be negative");
        }

        if (CompactionWindow < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(CompactionWindow), CompactionWindow, "CompactionWindow must not be negative");
        }

        if (!Enum.IsDefined(Durability))
        {
            throw new ArgumentOutOfRangeException(nameof(Durability), Durability, "Durability must be ServerDefault, Always, Interval or Memory");
        }

        if (MaxMessages < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxMessages), MaxMessages, "MaxMessages must not be negative (0: no limit)");
        }

        if (MaxBytes < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBytes), MaxBytes, "MaxBytes must not be negative (0: no limit)");
        }

        if (TombstoneRetention < TimeSpan.Zero || (TombstoneRetention > TimeSpan.Zero && !KeepLatestPerKey))
        {
            throw new ArgumentOutOfRangeException(nameof(TombstoneRetention), TombstoneRetention, "TombstoneRetention must not be negative, and is only for KeepLatestPerKey");
        }

        if (CommitInterval < TimeSpan.Zero || (CommitInterval > TimeSpan.Zero && Durability != Durability.Interval))
        {
            throw new ArgumentOutOfRangeException(nameof(CommitInterval), CommitInterval, "CommitInterval must not be negative, and is only for Interval durability");
        }
    }
}
