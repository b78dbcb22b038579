using System.Globalization;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Benchmarks.Workloads;

/// <summary>
/// W2d: W2's replay as a durable consumer, on an Always topic and on an Interval topic: each is loaded with the message
/// count, then read from the start by a durable consumer with prefetch 1,000, committing every 500. A durable consumer's
/// Commit is recorded in memory and written by the topic's next flush (fsynced on Always topics), so the Always replay
/// should not fall far behind the Interval one.
/// </summary>
internal sealed class DurableReplayWorkload : IWorkload
{
    public string Id => "w2d";

    public string Title => "W2d durable replay";

    public async Task RunAsync(BenchmarkContext context, ResultTable results, CancellationToken cancellationToken)
    {
        var messages = context.Settings.Messages;
        var always = await LoadAndReplayAsync(context, Durability.Always, messages, cancellationToken);
        var interval = await LoadAndReplayAsync(context, Durability.Interval, messages, cancellationToken);
        var ratio = interval.MessagesPerSecond > 0 ? always.MessagesPerSecond / interval.MessagesPerSecond : 0;
        results.Add(always with
        {
            Notes = always.Notes + string.Create(CultureInfo.InvariantCulture, $"; Always / Interval = {ratio:0.00}"),
        });
        results.Add(interval);
    }

    private static async Task<WorkloadResult> LoadAndReplayAsync(BenchmarkContext context, Durability durability, long messages, CancellationToken cancellationToken)
    {
        var topic = context.NewTopicName("w2d");
        var name = $"W2d durable replay, {durability}, prefetch 1,000, commit every 500";
        await using (var producer = await context.ConnectAsync(cancellationToken))
        {
            await producer.CreateTopicAsync(topic, PublishWorkload.RetainedTopic with { Durability = durability }, cancellationToken);
            var load = await PublishWorkload.PublishManyAsync(
                producer, topic, messages, PublishWorkload.Window, BenchmarkContext.NewPayload(), keys: null, cancellationToken);
            if (load.TimedOut)
            {
                return WorkloadResult.Failure(name, WorkloadStatus.TimedOut, "loading timed out");
            }
        }

        return await ReplayWorkload.ReplayAsync(name, context, topic, messages, autoCommit: false, cancellationToken, durableName: "replayer");
    }
}
