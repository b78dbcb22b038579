using System.Diagnostics;
using System.Globalization;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Benchmarks.Workloads;

/// <summary>
/// W5: publish throughput with 1,000 in flight into three fresh retained topics that differ only in durability:
/// <see cref="Durability.Always"/> (each Ack waits for a group commit), <see cref="Durability.Interval"/> (the
/// server's commit period) and <see cref="Durability.Memory"/>, the same message count each. Every Always Ack must
/// say <see cref="PublishResult.Durable"/>. Then Always with one publish in flight, where every publish pays for
/// a commit (fsync) of its own.
/// </summary>
internal sealed class DurabilityWorkload : IWorkload
{
    /// <summary>Always within 3x of Interval: group commit should amortise the fsync over the window.</summary>
    private const double TargetRatio = 0.33;

    /// <summary>The one-in-flight run waits for an fsync per message, so it is short and has a time cap of its own.</summary>
    private const int LatencyRunMaxMessages = 2_000;

    private static readonly TimeSpan LatencyRunCap = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A pause before each phase so the previous topic's last commit (up to one commit period after its last
    /// publish) is not charged to the next phase.
    /// </summary>
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(250);

    public string Id => "w5";

    public string Title => "W5 durability";

    public async Task RunAsync(BenchmarkContext context, ResultTable results, CancellationToken cancellationToken)
    {
        await using var client = await context.ConnectAsync(cancellationToken);
        var payload = BenchmarkContext.NewPayload();
        var messages = context.Settings.Messages;
        var interval = context.CommitInterval is { } period
            ? Invariant($"{period.TotalMilliseconds:0} ms")
            : "the server's period";

        var always = await PublishAsync(client, context, Durability.Always, payload, messages, cancellationToken);
        if (always.TimedOut)
        {
            results.Add(AlwaysResult(always, interval: null));
            return;
        }

        var intervalRun = await PublishAsync(client, context, Durability.Interval, payload, messages, cancellationToken);
        results.Add(AlwaysResult(always, intervalRun));
        results.Add(intervalRun.ToResult($"W5 durability Interval ({interval}), 1,000 in flight") with
        {
            Notes = Invariant($"Ack after append; {intervalRun.Durable:N0} of {intervalRun.Published:N0} Acks said Durable"),
        });
        if (intervalRun.TimedOut)
        {
            return;
        }

        var memory = await PublishAsync(client, context, Durability.Memory, payload, messages, cancellationToken);
        var memoryClaimsDurable = memory.Durable > 0;
        results.Add(memory.ToResult("W5 durability Memory, 1,000 in flight") with
        {
            Status = memory.TimedOut ? WorkloadStatus.TimedOut : memoryClaimsDurable ? WorkloadStatus.Failed : WorkloadStatus.Completed,
            Notes = Invariant($"nothing on disk; {memory.Durable:N0} Acks said Durable (must be 0)") +
                (always.MessagesPerSecond > 0 ? Invariant($"; Always/Memory = {always.MessagesPerSecond / Math.Max(1, memory.MessagesPerSecond):0.00}") : string.Empty),
        });
        if (memory.TimedOut)
        {
            return;
        }

        var latencyMessages = (int)Math.Min(LatencyRunMaxMessages, Math.Max(100, messages / 10));
        results.Add(await PublishOneAtATimeAsync(client, context, latencyMessages, payload, always, cancellationToken));
    }

    private static async Task<PublishRun> PublishAsync(
        ZaichikClient client, BenchmarkContext context, Durability durability, ReadOnlyMemory<byte> payload, long messages, CancellationToken cancellationToken)
    {
        await Task.Delay(Settle, cancellationToken);
        var topic = context.NewTopicName("w5");
        await client.CreateTopicAsync(topic, PublishWorkload.RetainedTopic with { Durability = durability }, cancellationToken);
        return await PublishWorkload.PublishManyAsync(client, topic, messages, PublishWorkload.Window, payload, keys: null, cancellationToken);
    }

    private static WorkloadResult AlwaysResult(PublishRun always, PublishRun? interval)
    {
        var nonDurable = always.Published - always.Durable;
        var ratio = interval is { TimedOut: false, MessagesPerSecond: > 0 } ? always.MessagesPerSecond / interval.MessagesPerSecond : (double?)null;
        var notes = Invariant($"Ack after group commit; non-durable Acks {nonDurable:N0} (must be 0)");
        notes += ratio is { } value ? Invariant($"; Always/Interval = {value:0.00} (target >= {TargetRatio:0.00})") : "; Always/Interval not measured";
        return always.ToResult("W5 durability Always, 1,000 in flight") with
        {
            Target = Invariant($"Always/Interval >= {TargetRatio:0.00}, all Acks Durable"),
            TargetMet = !always.TimedOut && nonDurable == 0 && ratio >= TargetRatio,
            Status = always.TimedOut ? WorkloadStatus.TimedOut : nonDurable > 0 ? WorkloadStatus.Failed : WorkloadStatus.Completed,
            Notes = notes,
        };
    }

    /// <summary>
    /// Always with one publish in flight: each Ack waits for a commit that holds only its own message, so the
    /// latency is about one fsync plus a round trip. Also estimates the commit rate of the 1,000-in-flight run.
    /// </summary>
    private static async Task<WorkloadResult> PublishOneAtATimeAsync(
        ZaichikClient client, BenchmarkContext context, int count, ReadOnlyMemory<byte> payload, PublishRun always, CancellationToken cancellationToken)
    {
        await Task.Delay(Settle, cancellationToken);
        var topic = context.NewTopicName("w5");
        await client.CreateTopicAsync(topic, PublishWorkload.RetainedTopic with { Durability = Durability.Always }, cancellationToken);

        var latencies = new LatencyRecorder(count);
        var before = ResourceSnapshot.Take();
        var cappedAt = before.Timestamp + (long)(LatencyRunCap.TotalSeconds * Stopwatch.Frequency);
        var published = 0;
        var nonDurable = 0;
        var capped = false;
        while (published < count && !cancellationToken.IsCancellationRequested)
        {
            var start = Stopwatch.GetTimestamp();
            if (start > cappedAt)
            {
                capped = true;
                break;
            }

            var result = await client.PublishAsync(topic, payload);
            latencies.Record(Stopwatch.GetTimestamp() - start);
            published++;
            if (!result.Durable)
            {
                nonDurable++;
            }
        }

        var usage = ResourceSnapshot.Take().Since(before);
        var timedOut = cancellationToken.IsCancellationRequested && published < count;
        var latency = LatencyRecorder.Summarize(latencies);
        var notes = Invariant($"latency is publish to Ack, one commit (fsync) per publish; {count:N0} msgs");
        if (capped)
        {
            notes += Invariant($", stopped at the {LatencyRunCap.TotalSeconds:0} s cap after {published:N0}");
        }

        notes += Invariant($"; non-durable Acks {nonDurable:N0} (must be 0)");
        if (published > 0 && usage.Elapsed > TimeSpan.Zero && always.MessagesPerSecond > 0)
        {
            // One commit per publish here, so this run's rate is a commit rate. The 1,000-in-flight run's committer
            // loops without pause while publishes keep it dirty; at this rate its commits would have held the
            // following. It is a rough figure: one commit is being written while the next fills, so with 1,000 in
            // flight each holds at most ~500, and bigger commits take longer than these one-message ones.
            var commitsPerSecond = published / usage.Elapsed.TotalSeconds;
            notes += Invariant($"; {commitsPerSecond:N0} commits/s here, so at 1,000 in flight ~{always.MessagesPerSecond / commitsPerSecond:N0} msgs per commit")
                + " (estimate if its commits ran back to back at this rate; they write more, so there are likely fewer, larger ones)";
        }

        return new WorkloadResult
        {
            Name = "W5 durability Always, 1 in flight",
            Messages = published,
            Elapsed = usage.Elapsed,
            Latency = latency,
            Usage = usage,
            Status = timedOut ? WorkloadStatus.TimedOut : nonDurable > 0 ? WorkloadStatus.Failed : WorkloadStatus.Completed,
            Notes = notes,
        };
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
