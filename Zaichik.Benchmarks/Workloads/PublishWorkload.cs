using System.Diagnostics;
using Zaichik.Client;

namespace Zaichik.Benchmarks.Workloads;

/// <summary>
/// W1: one producer connection publishes as fast as a window of 1,000 unacknowledged publishes allows; the clock
/// stops at the last Ack. Then the same with one publish in flight, for publish latency.
/// </summary>
internal sealed class PublishWorkload : IWorkload
{
    public const int Window = 1_000;

    /// <summary>The one-in-flight run is round-trip bound, so it gets fewer messages and a time cap of its own.</summary>
    private const int LatencyRunMaxMessages = 100_000;

    private static readonly TimeSpan LatencyRunCap = TimeSpan.FromSeconds(20);

    /// <summary>Stored like the peers' streams: retained, so every publish really lands in the log.</summary>
    public static TopicOptions RetainedTopic { get; } = new() { RetentionTtl = TimeSpan.FromHours(1) };

    public string Id => "w1";

    public string Title => "W1 publish";

    public async Task RunAsync(BenchmarkContext context, ResultTable results, CancellationToken cancellationToken)
    {
        await using var client = await context.ConnectAsync(cancellationToken);
        var payload = BenchmarkContext.NewPayload();

        var topic = context.NewTopicName(Id);
        await client.CreateTopicAsync(topic, RetainedTopic, cancellationToken);
        var run = await PublishManyAsync(client, topic, context.Settings.Messages, Window, payload, keys: null, cancellationToken);
        results.Add(run.ToResult("W1 publish, 1,000 in flight") with
        {
            Target = ">= 500k msgs/s",
            TargetMet = !run.TimedOut && run.MessagesPerSecond >= 500_000,
            Peers = "NATS JetStream 258k, Redis Streams 506k",
        });

        var latencyMessages = (int)Math.Min(LatencyRunMaxMessages, Math.Max(1_000, context.Settings.Messages / 10));
        var latencyTopic = context.NewTopicName(Id);
        await client.CreateTopicAsync(latencyTopic, RetainedTopic, cancellationToken);
        results.Add(await PublishOneAtATimeAsync(client, latencyTopic, latencyMessages, payload, cancellationToken));
    }

    /// <summary>
    /// Publishes <paramref name="count"/> messages keeping <paramref name="window"/> in flight; the clock runs from
    /// the first publish to the last Ack. <paramref name="keys"/>, when given, are used in turn.
    /// </summary>
    public static async Task<PublishRun> PublishManyAsync(
        ZaichikClient client, string topic, long count, int window, ReadOnlyMemory<byte> payload, ReadOnlyMemory<byte>[]? keys, CancellationToken cancellationToken)
    {
        var inFlight = new PublishWindow(window);
        var before = ResourceSnapshot.Take();
        for (long i = 0; i < count && !cancellationToken.IsCancellationRequested; i++)
        {
            var slot = await inFlight.ReserveAsync();
            ReadOnlyMemory<byte>? key = keys is null ? (ReadOnlyMemory<byte>?)null : keys[i % keys.Length];
            inFlight.Issue(slot, client.PublishAsync(topic, payload, key));
        }

        await inFlight.DrainAsync();
        var usage = ResourceSnapshot.Take().Since(before);
        return new PublishRun(inFlight.Issued, inFlight.Accepted, inFlight.Duplicates, usage, cancellationToken.IsCancellationRequested)
        {
            Durable = inFlight.Durable,
        };
    }

    private static async Task<WorkloadResult> PublishOneAtATimeAsync(
        ZaichikClient client, string topic, int count, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        var latencies = new LatencyRecorder(count);
        var before = ResourceSnapshot.Take();
        var cappedAt = before.Timestamp + (long)(LatencyRunCap.TotalSeconds * Stopwatch.Frequency);
        var published = 0;
        var capped = false;
        while (published < count && !cancellationToken.IsCancellationRequested)
        {
            var start = Stopwatch.GetTimestamp();
            if (start > cappedAt)
            {
                capped = true;
                break;
            }

            await client.PublishAsync(topic, payload);
            latencies.Record(Stopwatch.GetTimestamp() - start);
            published++;
        }

        var usage = ResourceSnapshot.Take().Since(before);
        var timedOut = cancellationToken.IsCancellationRequested && published < count;
        var notes = $"latency is publish to Ack; {count:N0} msgs (--messages / 10, at most {LatencyRunMaxMessages:N0})";
        if (capped)
        {
            notes += $", stopped at the {LatencyRunCap.TotalSeconds:0} s cap after {published:N0}";
        }

        return new WorkloadResult
        {
            Name = "W1 publish, 1 in flight",
            Messages = published,
            Elapsed = usage.Elapsed,
            Latency = LatencyRecorder.Summarize(latencies),
            Usage = usage,
            Status = timedOut ? WorkloadStatus.TimedOut : WorkloadStatus.Completed,
            Notes = notes,
        };
    }
}

/// <summary>The outcome of <see cref="PublishWorkload.PublishManyAsync"/>.</summary>
internal sealed record PublishRun(long Published, long Accepted, long Duplicates, ResourceUsage Usage, bool TimedOut)
{
    /// <summary>Acks that said the message was already committed to disk (<see cref="PublishResult.Durable"/>).</summary>
    public long Durable { get; init; }

    public double MessagesPerSecond => Usage.Elapsed > TimeSpan.Zero ? Published / Usage.Elapsed.TotalSeconds : 0;

    public WorkloadResult ToResult(string name) => new()
    {
        Name = name,
        Messages = Published,
        Elapsed = Usage.Elapsed,
        Usage = Usage,
        Status = TimedOut ? WorkloadStatus.TimedOut : WorkloadStatus.Completed,
    };
}
