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

        if (CommitInterval < TimeSpan.Zero || (CommitInterval > TimeSpan.Zero && Durability != Durability.Interval))
        {
            throw new ArgumentOutOfRangeException(nameof(CommitInterval), CommitInterval, "CommitInterval must not be negative, and is only for Interval durability");
        }
    }
}
