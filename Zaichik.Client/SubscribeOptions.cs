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
    }
}
