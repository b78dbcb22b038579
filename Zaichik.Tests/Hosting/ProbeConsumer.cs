using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Zaichik.Client;
using Zaichik.Client.Extensions.Hosting;

namespace Zaichik.Tests.Hosting;

/// <summary>The typed message of the consumer tests.</summary>
public sealed record Order(string Id, int Quantity);

/// <summary>What a <see cref="ProbeConsumer"/> consumes and how it behaves, and what it saw.</summary>
internal sealed class ConsumerProbe
{
    public required string Topic { get; init; }

    public string? DurableName { get; init; }

    public string? Group { get; init; }

    /// <summary>Delivery counts handed to ProcessAsync, in order.</summary>
    public ConcurrentQueue<int> DeliveryCounts { get; } = new();

    /// <summary>Runs inside ProcessAsync; throw to fail the message.</summary>
    public Func<ZaichikMessage<Order>, CancellationToken, Task> Process { get; init; } = static (_, _) => Task.CompletedTask;

    public ZaichikConsumerFailureAction FailureAction { get; init; } = ZaichikConsumerFailureAction.Retry;

    /// <summary>Sequences handed to ProcessAsync, retries included.</summary>
    public ConcurrentQueue<long> Attempts { get; } = new();

    /// <summary>Orders whose ProcessAsync returned.</summary>
    public ConcurrentQueue<Order> Processed { get; } = new();

    /// <summary>Activity.Current inside each ProcessAsync.</summary>
    public ConcurrentQueue<Activity?> Activities { get; } = new();
}

internal sealed class ProbeConsumer(ZaichikClient client, ConsumerProbe probe, ILogger<ProbeConsumer> logger)
    : ZaichikConsumer<Order>(client, logger)
{
    protected override string Topic => probe.Topic;

    protected override SubscribeOptions SubscribeOptions => new() { DurableName = probe.DurableName, Group = probe.Group, Prefetch = 8 };

    protected override TimeSpan RetryDelay => TimeSpan.FromMilliseconds(50);

    protected override async Task ProcessAsync(ZaichikMessage<Order> message, CancellationToken cancellationToken)
    {
        probe.Attempts.Enqueue(message.Sequence);
        probe.DeliveryCounts.Enqueue(message.DeliveryCount);
        probe.Activities.Enqueue(Activity.Current);
        await probe.Process(message, cancellationToken);
        probe.Processed.Enqueue(message.Value);
    }

    protected override ValueTask<ZaichikConsumerFailureAction> OnProcessingFailedAsync(
        ZaichikMessage<Order> message, Exception exception, CancellationToken cancellationToken) =>
        ValueTask.FromResult(probe.FailureAction);
}
