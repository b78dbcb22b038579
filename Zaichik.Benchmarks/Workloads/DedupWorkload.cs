using System.Text;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Benchmarks.Workloads;

/// <summary>
/// W4: publishes cycle over 1,000 keys into a topic with a 10 s compaction window, 1,000 in flight; the server
/// must store only the first message of each key. A fresh subscriber then reads the topic from the start and
/// must find exactly the stored ones (1,000 when the publishing took under 10 s) and nothing more.
/// </summary>
internal sealed class DedupWorkload : IWorkload
{
    private const int Keys = 1_000;
    private const int Prefetch = 1_000;
    private const int CommitEvery = 500;

    private static readonly TimeSpan CompactionWindow = TimeSpan.FromSeconds(10);

    /// <summary>How long the subscriber keeps listening after the expected count to prove nothing more arrives.</summary>
    private static readonly TimeSpan QuietPeriod = TimeSpan.FromMilliseconds(500);

    public string Id => "w4";

    public string Title => "W4 dedup";

    public async Task RunAsync(BenchmarkContext context, ResultTable results, CancellationToken cancellationToken)
    {
        var topic = context.NewTopicName(Id);
        var keys = Enumerable.Range(0, Keys).Select(i => (ReadOnlyMemory<byte>)Encoding.UTF8.GetBytes($"key-{i}")).ToArray();

        PublishRun run;
        await using (var producer = await context.ConnectAsync(cancellationToken))
        {
            await producer.CreateTopicAsync(
                topic, new TopicOptions { CompactionWindow = CompactionWindow, RetentionTtl = TimeSpan.FromHours(1) }, cancellationToken);
            run = await PublishWorkload.PublishManyAsync(
                producer, topic, context.Settings.Messages, PublishWorkload.Window, BenchmarkContext.NewPayload(), keys, cancellationToken);
        }

        // Publishing for longer than the window lets keys in again; then more than 1,000 are rightly stored.
        var windowHeld = run.Usage.Elapsed < CompactionWindow;
        var expectedStored = windowHeld ? Math.Min(Keys, run.Published) : run.Accepted;
        var storedCorrectly = run.Accepted == expectedStored;
        results.Add(run.ToResult("W4 dedup publish, 1,000 keys, 1,000 in flight") with
        {
            Target = ">= 500k msgs/s",
            TargetMet = !run.TimedOut && run.MessagesPerSecond >= 500_000,
            Peers = "NATS 455k",
            Status = run.TimedOut ? WorkloadStatus.TimedOut : storedCorrectly ? WorkloadStatus.Completed : WorkloadStatus.Failed,
            Notes = $"stored {run.Accepted:N0}, dropped as duplicates {run.Duplicates:N0}" +
                (windowHeld ? string.Empty : $" (publishing outlasted the {CompactionWindow.TotalSeconds:0} s window, so keys were let in again)"),
        });
        if (run.TimedOut)
        {
            return;
        }

        await using var consumer = await context.ConnectAsync(cancellationToken);
        var before = ResourceSnapshot.Take();
        await using var subscription = await consumer.SubscribeAsync(
            topic, new SubscribeOptions { From = StartPosition.Retained, Prefetch = Prefetch }, cancellationToken);
        var read = await SubscriptionReader.ReadAsync(consumer, subscription, run.Accepted, CommitEvery, QuietPeriod, cancellationToken);
        var usage = ResourceSnapshot.Take().Since(before);
        var found = read.Received == run.Accepted && read.OutOfOrder == 0;
        results.Add(new WorkloadResult
        {
            Name = "W4 dedup check: fresh subscriber from Retained",
            Usage = usage,
            Target = $"finds exactly {expectedStored:N0}",
            TargetMet = found && read.Received == expectedStored,
            Status = read.TimedOut ? WorkloadStatus.TimedOut : found ? WorkloadStatus.Completed : WorkloadStatus.Failed,
            Notes = $"found {read.Received:N0} messages (stored {run.Accepted:N0}; none more within {QuietPeriod.TotalMilliseconds:0} ms), {read.OutOfOrder:N0} out of order",
        });
    }
}
