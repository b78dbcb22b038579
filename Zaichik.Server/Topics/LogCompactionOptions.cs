namespace Zaichik.Server.Topics;

/// <summary>
/// When the sweep compacts a topic that keeps the latest value per key: once the log beyond its compacted part holds at
/// least <paramref name="MinBytes"/> and makes up at least <paramref name="MinDirtyRatio"/> of the two together (Kafka's
/// <c>min.cleanable.dirty.ratio</c>), so that a pass rewrites at most about as much as arrived since the last one.
/// </summary>
internal sealed record LogCompactionOptions(long MinBytes, double MinDirtyRatio)
{
    public static LogCompactionOptions Default { get; } = new(1024 * 1024, 0.5);
}
