namespace Zaichik.Server.Storage;

/// <summary>
/// Who published a message idempotently: the producer id its connection announced and the number the producer gave
/// this publish. Stored with the record so that the topic can rebuild, after a restart or a crash, which publishes it
/// already holds. <see cref="None"/> (both zero) for an ordinary publish.
/// </summary>
internal readonly record struct ProducerStamp(ulong ProducerId, ulong Sequence)
{
    public static ProducerStamp None => default;

    /// <summary>True for an idempotent publish: both numbers are set.</summary>
    public bool IsSet => ProducerId != 0 && Sequence != 0;
}
