namespace Zaichik.Server.Topics;

/// <summary>
/// Where one reader of a topic stands. The retention sweep never truncates past the slowest cursor, so a reader never
/// meets a segment deleted under it; expired records it has not reached yet are filtered when read instead.
/// </summary>
internal sealed class TopicCursor(long position, long sequence)
{
    private long _position = position;
    private long _sequence = sequence;

    /// <summary>Address of the next record this reader will read.</summary>
    public long Position => Volatile.Read(ref _position);

    /// <summary>About the sequence of the next message this reader will read (it is not exact while a batch is read).</summary>
    public long Sequence => Volatile.Read(ref _sequence);

    /// <summary>Moves the cursor; the sequence first, so the sweep never sees a position ahead of its sequence.</summary>
    public void MoveTo(long position, long sequence)
    {
        Volatile.Write(ref _sequence, sequence);
        Volatile.Write(ref _position, position);
    }
}
