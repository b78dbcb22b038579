namespace Zaichik.Client.Extensions.Hosting;

/// <summary>What a <see cref="ZaichikConsumer{T}"/> does with a message whose processing failed.</summary>
public enum ZaichikConsumerFailureAction
{
    /// <summary>
    /// Leave it uncommitted, unsubscribe, wait <see cref="ZaichikConsumer{T}.RetryDelay"/> and subscribe again from that
    /// message, so it is delivered again. The default.
    /// </summary>
    Retry,

    /// <summary>Commit it as if it had been processed and go on with the next one (after, say, parking it elsewhere).</summary>
    Skip,
}
