using System.Diagnostics;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Benchmarks.Workloads;

/// <summary>
/// Runs the publish and subscribe paths once, unmeasured, so that the first workload does not pay for start-up:
/// measured on the 2-core machine, the first million publishes after a 100,000-message warm-up ran at
/// 260-350k msgs/s and the next million at 520-650k, with tiered JIT off as well as on (the thread pool and
/// the JIT's profile-guided tier both take seconds to settle). After 300,000 the first run matches later ones.
/// </summary>
internal static class WarmUp
{
    public static async Task RunAsync(BenchmarkContext context, CancellationToken cancellationToken)
    {
        var messages = Math.Min(300_000, Math.Max(10_000, context.Settings.Messages * 3 / 10));
        var started = Stopwatch.GetTimestamp();
        var topic = context.NewTopicName("warmup");
        await using var client = await context.ConnectAsync(cancellationToken);
        await client.CreateTopicAsync(topic, PublishWorkload.RetainedTopic, cancellationToken);
        await PublishWorkload.PublishManyAsync(client, topic, messages, PublishWorkload.Window, BenchmarkContext.NewPayload(), keys: null, cancellationToken);
        await using var subscription = await client.SubscribeAsync(
            topic, new SubscribeOptions { From = StartPosition.Retained, Prefetch = 1_000 }, cancellationToken);
        await SubscriptionReader.ReadAsync(client, subscription, messages, 500, TimeSpan.Zero, cancellationToken);

        // Let the JIT's background promotion (it waits for ~100 ms without new tier-0 activity) catch up.
        await Task.Delay(500, cancellationToken);
        Console.WriteLine($"warm-up: {messages:N0} messages published and read back in {Stopwatch.GetElapsedTime(started).TotalSeconds:0.00} s (not measured)");
    }
}
