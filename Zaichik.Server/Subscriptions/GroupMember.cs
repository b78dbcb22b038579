using Zaichik.Server.Sessions.Internal;

namespace Zaichik.Server.Subscriptions;

/// <summary>
/// One connection's membership of a <see cref="ConsumerGroup"/>: where the group writes this member's deliveries, the
/// connection's window they count in, and which of the group's messages are in flight to it. Everything but the counters
/// is guarded by the group's lock.
/// </summary>
internal sealed class GroupMember(int id, int prefetch, DeliveryWindow window, ConnectionWriter writer)
{
    private long _messagesOut;
    private long _bytesOut;

    /// <summary>Unique within the group's life; decides which keys hash to this member.</summary>
    public int Id { get; } = id;

    public int Prefetch { get; } = prefetch;

    public DeliveryWindow Window { get; } = window;

    public ConnectionWriter Writer { get; } = writer;

    /// <summary>Sequences delivered to this member and not yet committed, given back, or timed out.</summary>
    public HashSet<long> InFlight { get; } = [];

    /// <summary>Frames staged for the next write; owned by the group's pump.</summary>
    public PooledBufferWriter Staging { get; } = new();

    /// <summary>Messages in <see cref="Staging"/>.</summary>
    public int StagedMessages { get; set; }

    /// <summary>The write of the last staged frames; nothing more is staged until it is done. Owned by the pump.</summary>
    public Task Writing { get; set; } = Task.CompletedTask;

    /// <summary>Set when the member leaves: nothing more is staged for it.</summary>
    public bool Left { get; set; }

    public long MessagesOut => Volatile.Read(ref _messagesOut);

    public long BytesOut => Volatile.Read(ref _bytesOut);

    /// <summary>Whether the connection's window takes one more delivery from this member's subscription.</summary>
    public bool HasRoom => !Left && Writing.IsCompleted && Window.InFlight < Prefetch;

    public void Sent(int messages, int bytes)
    {
        Interlocked.Add(ref _messagesOut, messages);
        Interlocked.Add(ref _bytesOut, bytes);
    }
}
