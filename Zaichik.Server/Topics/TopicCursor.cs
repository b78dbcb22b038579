namespace Zaichik.Server.Topics;

/// <summary>
/// Where one reader of a topic stands. The retention sweep never truncates past the slowest cursor, so a
/// reader's iterator never meets a segment deleted under it; expired records it has not reached yet are
/// filtered when read instead.
/// </summary>
internal sealed class TopicCursor(long position)
{
    private long _position = position;

    /// <summary>Address of the next record this reader will read.</summary>
    public long Position
    {
        get => Volatile.Read(ref _position);
        set => Volatile.Write(ref _position, value);
    }
}
