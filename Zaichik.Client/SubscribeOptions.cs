using Zaichik.Protocol;

namespace Zaichik.Client;

/// <summary>How a subscription starts and how its deliveries are acknowledged.</summary>
public sealed record SubscribeOptions
{
    /// <summary>Retained messages first, prefetch 1, manual commit.</summary>
    public static SubscribeOptions Default { get; } = new();

    /// <summary>
    /// <see cref="StartPosition.Retained"/> (the default) delivers every retained, unexpired message first;
    /// <see cref="StartPosition.Latest"/> only messages published after the subscription was acknowledged;
    /// <see cref="StartPosition.Sequence(long)"/> starts at the first stored message with that sequence or a later one, and
    /// <see cref="StartPosition.Time(DateTimeOffset)"/> at the first one accepted at or after that time.
    /// </summary>
    public StartPosition From { get; init; } = StartPosition.Retained;

    /// <summary>How many delivered messages may await a commit before the server pauses delivery. At least 1; default 1.</summary>
    public int Prefetch { get; init; } = 1;

    /// <summary>
    /// When true, the subscription commits each message (by topic and sequence) when the consumer asks for the
    /// next one. When false (the default) the application calls <see cref="ZaichikClient.CommitAsync(ZaichikMessage, CancellationToken)"/>.
    /// </summary>
    public bool AutoCommit { get; init; }

    /// <summary>
    /// Makes this a durable consumer: the server keeps the sequence it last committed on this topic under this name, and a
    /// later subscription with the same name resumes right after it (ignoring <see cref="From"/>), receiving again every
    /// message it had not committed. Null (the default) for an ordinary subscription. 1 to 64 ASCII letters, digits,
    /// '.', '-' or '_'. When the server cannot read the stored position (a damaged file), it refuses the subscription with
    /// <see cref="ErrorCode.ConsumerPositionLost"/> unless <see cref="From"/> is a sequence or a time, which then says
    /// where the consumer resumes.
    /// </summary>
    public string? DurableName { get; init; }

    /// <summary>
    /// <see cref="AckPolicy.Explicit"/> (the default): deliveries wait for a commit within <see cref="Prefetch"/>.
    /// <see cref="AckPolicy.None"/>: nothing to commit; the server sends as fast as this connection reads, for fan-out and
    /// replay at full speed. Commits of such a subscription are skipped, and <see cref="AutoCommit"/> does nothing. As a
    /// durable consumer its stored position moves as messages are sent, so after a disconnect it resumes after what the
    /// server had sent (messages in transit then are not sent again: at most once), and a gap is reported through
    /// <see cref="ZaichikClient.SubscriptionGap"/>.
    /// </summary>
    public AckPolicy AckPolicy { get; init; } = AckPolicy.Explicit;

    /// <summary>
    /// Joins the consumer group of this name on the topic: every subscription with the same group name, on any connection,
    /// shares the topic's messages, each message in flight to one member at a time (a keyed message to the member its key
    /// is assigned to, so one key's messages reach one member in order while it stays; unkeyed ones round robin). A
    /// delivery not committed within <see cref="AckWait"/>, given back with
    /// <see cref="ZaichikClient.NackAsync(ZaichikMessage, TimeSpan, CancellationToken)"/>, or left by a member that goes
    /// away is delivered again, preferably to another member, with <see cref="ZaichikMessage.DeliveryCount"/> one higher.
    /// The group is durable: the server keeps what it has done across restarts, and the group's first member ever starts
    /// where <see cref="From"/> says. Members commit each message on its own
    /// (<see cref="ZaichikClient.CommitAsync(ZaichikMessage, CancellationToken)"/>). Null (the default): a subscription of its
    /// own. Same rules as <see cref="DurableName"/>; not both.
    /// </summary>
    public string? Group { get; init; }

    /// <summary>
    /// How long the server waits for a commit of a delivery before delivering it again. With a <see cref="Group"/> it is the
    /// group's (the group takes the settings of the member that joined last; null: the server's default, 30 s unless
    /// configured). Without one, set on an ordinary subscription, it gives that subscription redelivery of its own while it
    /// lasts: its deliveries are committed one by one and come again, on this connection, when not committed in time or
    /// given back with Nack (not with <see cref="DurableName"/>: a durable consumer with redelivery is a group).
    /// </summary>
    public TimeSpan? AckWait { get; init; }

    /// <summary>
    /// After this many deliveries without a commit (to the group, or to this subscription without one), a message goes to <see cref="DeadLetterTopic"/> (or is
    /// dropped when there is none) and counts as committed. Null (the default): unlimited.
    /// </summary>
    public int? MaxDeliver { get; init; }

    /// <summary>
    /// Where messages that reached <see cref="MaxDeliver"/> go, with their key, payload and headers plus
    /// <c>zaichik-dead-letter-topic</c>, <c>zaichik-dead-letter-sequence</c>, <c>zaichik-delivery-count</c> and
    /// <c>zaichik-dead-letter-group</c>. The token must be allowed to publish there.
    /// </summary>
    public string? DeadLetterTopic { get; init; }

    /// <summary>A group member, or a subscription with redelivery of its own: deliveries are committed one by one and may come again.</summary>
    internal bool Redelivers => Group is not null || AckWait is not null || MaxDeliver is not null || DeadLetterTopic is not null;

    internal SubscribeFrame ToFrame(ulong requestId, string topic, StartPosition from) =>
        new(requestId, topic, from, (uint)Prefetch, DurableName, AckPolicy, Group,
            AckWait is { } wait ? (uint)Math.Max(1, (long)wait.TotalMilliseconds) : 0, MaxDeliver is { } max ? (uint)max : 0, DeadLetterTopic);

    internal void Validate()
    {
        if (!Enum.IsDefined(From.Kind))
        {
            throw new ArgumentOutOfRangeException(nameof(From), From, "From must be Retained, Latest, a Sequence or a Time");
        }

        if (!Enum.IsDefined(AckPolicy))
        {
            throw new ArgumentOutOfRangeException(nameof(AckPolicy), AckPolicy, "AckPolicy must be Explicit or None");
        }

        if (Prefetch < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(Prefetch), Prefetch, "Prefetch must be at least 1");
        }

        if (DurableName is not null && ConsumerName.Validate(DurableName) is { } problem)
        {
            throw new ArgumentException(problem, nameof(DurableName));
        }

        if (!Redelivers)
        {
            return;
        }

        if (Group is not null && ConsumerName.Validate(Group) is { } invalid)
        {
            throw new ArgumentException(invalid.Replace("durable consumer name", "consumer group name", StringComparison.Ordinal), nameof(Group));
        }

        if (DurableName is not null)
        {
            throw new ArgumentException(Group is not null
                ? "a subscription is either a durable consumer or a member of a group, not both: a group is durable already"
                : "a durable consumer with AckWait, MaxDeliver or a DeadLetterTopic is a consumer group: set Group instead of DurableName (a group is durable)",
                nameof(DurableName));
        }

        if (AckPolicy != AckPolicy.Explicit)
        {
            throw new ArgumentException("redelivery (a Group, AckWait, MaxDeliver) needs AckPolicy.Explicit: messages are redelivered until committed", nameof(AckPolicy));
        }

        if (AckWait is { } wait && (wait < TimeSpan.FromMilliseconds(1) || wait.TotalMilliseconds > uint.MaxValue))
        {
            throw new ArgumentOutOfRangeException(nameof(AckWait), wait, "AckWait must be 1 ms to about 49.7 days");
        }

        if (MaxDeliver is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxDeliver), MaxDeliver, "MaxDeliver must be at least 1 (null for unlimited)");
        }

        if (DeadLetterTopic is not null && TopicName.Validate(DeadLetterTopic) is { } badTopic)
        {
            throw new ArgumentException(badTopic, nameof(DeadLetterTopic));
        }
    }
}
