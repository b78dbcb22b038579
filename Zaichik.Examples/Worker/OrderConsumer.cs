using Microsoft.Extensions.Logging;
using Zaichik.Client;
using Zaichik.Client.Extensions.Hosting;

namespace Zaichik.Examples.Worker;

/// <summary>Consumes the run's topic as a durable consumer; each order is committed after it is recorded.</summary>
public sealed class OrderConsumer(ZaichikClient client, OrderLedger ledger, ILogger<OrderConsumer> logger)
    : ZaichikConsumer<OrderPlaced>(client, logger)
{
    /// <inheritdoc />
    protected override string Topic => ledger.Topic;

    /// <inheritdoc />
    protected override SubscribeOptions SubscribeOptions { get; } = new() { DurableName = "worker-example", Prefetch = 16 };

    /// <inheritdoc />
    protected override Task ProcessAsync(ZaichikMessage<OrderPlaced> message, CancellationToken cancellationToken)
    {
        ledger.Record(message.Value, message.Sequence);
        return Task.CompletedTask;
    }
}
