using System.Diagnostics;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Benchmarks.Workloads;

/// <summary>
/// W2: a retained topic is loaded with the message count (timed separately), then a new subscriber connection
/// reads all of it from the start with prefetch 1,000, committing every 500 messages; the clock stops when the
/// last Commit is sent. A second new connection then does the same with AutoCommit (one Commit per message), and a
/// third with <see cref="AckPolicy.None"/> (no Commit at all).
/// </summary>
internal sealed class ReplayWorkload : IWorkload
{
    private const int Prefetch = 1_000;
    private const int CommitEvery = 500;

    public string Id => "w2";

    public string Title => "W2 replay";

    public async Task RunAsync(BenchmarkContext context, ResultTable results, CancellationToken cancellationToken)
    {
        var topic = context.NewTopicName(Id);
        var messages = context.Settings.Messages;
        await using (var producer = await context.ConnectAsync(cancellationToken))
        {
            await producer.CreateTopicAsync(topic, PublishWorkload.RetainedTopic, cancellationToken);
            var load = await PublishWorkload.PublishManyAsync(
                producer, topic, messages, PublishWorkload.Window, BenchmarkContext.NewPayload(), keys: null, cancellationToken);
            results.Add(load.ToResult("W2 load (publish, retained, 1,000 in flight)") with { Notes = "not part of the replay figure" });
            if (load.TimedOut)
            {
                return;
            }
        }

        var batched = await ReplayAsync("W2 replay, prefetch 1,000, commit every 500", context, topic, messages, autoCommit: false, cancellationToken);
        results.Add(batched with
        {
            Target = ">= 1M msgs/s",
            TargetMet = batched.Status == WorkloadStatus.Completed && batched.MessagesPerSecond >= 1_000_000,
            Peers = "NATS 572k, Redis 354k",
        });

        if (!cancellationToken.IsCancellationRequested)
        {
            var auto = await ReplayAsync("W2 replay, prefetch 1,000, AutoCommit", context, topic, messages, autoCommit: true, cancellationToken);
            results.Add(auto with { Notes = "one Commit frame per message; " + auto.Notes });
        }

        if (!cancellationToken.IsCancellationRequested)
        {
            var none = await ReplayAsync("W2 replay, AckPolicy None", context, topic, messages, autoCommit: false, cancellationToken, ackPolicy: AckPolicy.None);
            results.Add(none with { Notes = "no Commit: paced by the socket; " + none.Notes });
        }
    }

    /// <summary>A new connection reads <paramref name="expected"/> messages of <paramref name="topic"/> from the start, as a durable consumer when <paramref name="durableName"/> is set.</summary>
    internal static async Task<WorkloadResult> ReplayAsync(
        string name, BenchmarkContext context, string topic, long expected, bool autoCommit, CancellationToken cancellationToken, string? durableName = null,
        AckPolicy ackPolicy = AckPolicy.Explicit)
    {
        await using var consumer = await context.ConnectAsync(cancellationToken);
        var before = ResourceSnapshot.Take();
        await using var subscription = await consumer.SubscribeAsync(
            topic, new SubscribeOptions { From = StartPosition.Retained, Prefetch = Prefetch, AutoCommit = autoCommit, DurableName = durableName, AckPolicy = ackPolicy },
            cancellationToken);
        var outcome = await SubscriptionReader.ReadAsync(
            consumer, subscription, expected, autoCommit || ackPolicy == AckPolicy.None ? int.MaxValue : CommitEvery, TimeSpan.Zero, cancellationToken);
        var usage = ResourceSnapshot.Take().Since(before);

        var correct = outcome.Received == expected && outcome.OutOfOrder == 0;
        return new WorkloadResult
        {
            Name = name,
            Messages = outcome.Received,
            Elapsed = Stopwatch.GetElapsedTime(before.Timestamp, outcome.CompletedAt),
            Usage = usage,
            Status = outcome.TimedOut ? WorkloadStatus.TimedOut : correct ? WorkloadStatus.Completed : WorkloadStatus.Failed,
            Notes = $"read {outcome.Received:N0} of {expected:N0}, {outcome.OutOfOrder:N0} out of order",
        };
    }
}
