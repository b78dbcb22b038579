using System.Text;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Benchmarks.Workloads;

/// <summary>
/// W4: publishes cycle over 1,000 keys into a topic with a 10 s compaction window, 1,000 in flight; the server
/// must store only the first message of each key. A fresh subscriber then reads the topic from the start and
/// must find exactly the stored ones (1,000 when the publishing took under 10 s) and nothing more. Then the same
/// publishes cycle over 100,000 keys into a topic whose count limit (10,000) removes most stored messages while their
/// one-hour window runs: the topic writes what its key window still needs of them to its window file as its sweep
/// removes them, and a second pass over the first 10,000 keys must find every one a duplicate.
/// </summary>
internal sealed class DedupWorkload : IWorkload
{
    private const int Keys = 1_000;
    private const int Prefetch = 1_000;
    private const int CommitEvery = 500;

    private const int CappedKeys = 100_000;
    private const int CappedMaxMessages = 10_000;

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

        await RunCappedAsync(context, results, cancellationToken);
    }

    private async Task RunCappedAsync(BenchmarkContext context, ResultTable results, CancellationToken cancellationToken)
    {
        var topic = context.NewTopicName(Id);
        var keys = Enumerable.Range(0, CappedKeys).Select(i => (ReadOnlyMemory<byte>)Encoding.UTF8.GetBytes($"key-{i}")).ToArray();
        await using var producer = await context.ConnectAsync(cancellationToken);
        await producer.CreateTopicAsync(
            topic,
            new TopicOptions { CompactionWindow = TimeSpan.FromHours(1), RetentionTtl = TimeSpan.FromHours(1), MaxMessages = CappedMaxMessages },
            cancellationToken);
        var run = await PublishWorkload.PublishManyAsync(
            producer, topic, context.Settings.Messages, PublishWorkload.Window, BenchmarkContext.NewPayload(), keys, cancellationToken);
        if (run.TimedOut)
        {
            results.Add(run.ToResult("W4 dedup, 100,000 keys, count limit 10,000") with { Status = WorkloadStatus.TimedOut });
            return;
        }

        // Let the sweep (every second) remove what the limit says, then ask again for the keys it removed first.
        await Task.Delay(TimeSpan.FromSeconds(2.5), cancellationToken);
        var again = await PublishWorkload.PublishManyAsync(
            producer, topic, Math.Min(CappedMaxMessages, run.Accepted), PublishWorkload.Window, BenchmarkContext.NewPayload(), keys, cancellationToken);
        var windowFile = context.DataPath is null
            ? null
            : Directory.EnumerateFiles(context.DataPath, "windows", SearchOption.AllDirectories).FirstOrDefault(path => path.Contains(topic, StringComparison.Ordinal));
        var expected = Math.Min(CappedKeys, run.Published);
        var correct = run.Accepted == expected && again.Accepted == 0;
        results.Add(run.ToResult("W4 dedup, 100,000 keys, count limit 10,000") with
        {
            Target = "every repeat inside the window dropped",
            TargetMet = correct,
            Status = again.TimedOut ? WorkloadStatus.TimedOut : correct ? WorkloadStatus.Completed : WorkloadStatus.Failed,
            Notes = $"stored {run.Accepted:N0} (expected {expected:N0}); the first {again.Published:N0} keys again after the sweep: {again.Duplicates:N0} duplicates, {again.Accepted:N0} stored"
                + (windowFile is null ? string.Empty : $"; window file {new FileInfo(windowFile).Length:N0} bytes"),
        });
    }
}
