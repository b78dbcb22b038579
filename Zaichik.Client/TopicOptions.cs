namespace Zaichik.Client;

/// <summary>Settings of a topic, fixed when it is created. Both are sent as whole milliseconds.</summary>
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
    }
}
