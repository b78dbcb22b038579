namespace Zaichik.Server.Topics;

/// <summary>How much each topic remembers of its idempotent producers' publishes (see <see cref="ProducerWindow"/>).</summary>
/// <param name="Window">How long a stored publish is remembered after it was accepted.</param>
/// <param name="MaxPublishesPerProducer">Most publishes remembered per producer on one topic: the newest ones.</param>
/// <param name="MaxProducers">Most producers remembered per topic; past it the least recently active one is forgotten.</param>
internal sealed record ProducerWindowOptions(TimeSpan Window, int MaxPublishesPerProducer, int MaxProducers)
{
    /// <summary>The server's defaults: 2 minutes, 10,000 publishes per producer, 1,000 producers.</summary>
    public static ProducerWindowOptions Default { get; } = new(TimeSpan.FromMinutes(2), 10_000, 1_000);
}
