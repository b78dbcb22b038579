// Groups: two workers join the consumer group "workers" of a jobs topic and share six jobs, each job done by one of them.
// One job always fails: each attempt gives it back (Nack), and after two deliveries (MaxDeliver = 2) the broker moves it
// to the dead-letter topic, with headers naming where it came from.
// Run a server first (dotnet run --project Zaichik.Server), then: dotnet run --project Zaichik.Examples/Groups
// HOST and PORT choose the server (default 127.0.0.1:8889). Exits 0 when the five good jobs were done once each and the
// poison job reached the dead-letter topic, 1 otherwise.
using System.Collections.Concurrent;
using Zaichik.Client;
using Zaichik.Examples.Groups;
using Zaichik.Protocol;

var host = Environment.GetEnvironmentVariable("HOST") is { Length: > 0 } hostVariable ? hostVariable : "127.0.0.1";
var port = int.TryParse(Environment.GetEnvironmentVariable("PORT"), out var portVariable) ? portVariable : 8889;
return await GroupsExample.RunAsync(host, port, Console.Out, Console.Error, CancellationToken.None);

namespace Zaichik.Examples.Groups
{
    /// <summary>The consumer group flow, callable from tests.</summary>
    public static class GroupsExample
    {
        private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

        /// <summary>Runs the example, writing progress and failures to <paramref name="output"/>. Returns the exit code.</summary>
        public static Task<int> RunAsync(string host, int port, TextWriter output, CancellationToken cancellationToken) =>
            RunAsync(host, port, output, output, cancellationToken);

        /// <summary>Runs the example, writing progress to <paramref name="output"/> and failures to <paramref name="error"/>. Returns the exit code.</summary>
        public static async Task<int> RunAsync(string host, int port, TextWriter output, TextWriter error, CancellationToken cancellationToken)
        {
            var run = Guid.NewGuid().ToString("N")[..8];
            var jobs = $"jobs-{run}";
            var deadLetters = $"jobs-{run}.dead";
            string[] work = ["resize photo 1", "resize photo 2", "poison", "send invoice", "resize photo 3", "send receipt"];
            var done = new ConcurrentDictionary<string, string>();
            try
            {
                await using var publisher = await ZaichikClient.ConnectAsync(host, port, cancellationToken: cancellationToken);
                await publisher.CreateTopicAsync(jobs, new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) }, cancellationToken);

                var options = new SubscribeOptions { Group = "workers", Prefetch = 2, MaxDeliver = 2, DeadLetterTopic = deadLetters };
                await using var first = await ZaichikClient.ConnectAsync(host, port, cancellationToken: cancellationToken);
                await using var second = await ZaichikClient.ConnectAsync(host, port, cancellationToken: cancellationToken);
                await using var firstJobs = await first.SubscribeAsync(jobs, options, cancellationToken);
                await using var secondJobs = await second.SubscribeAsync(jobs, options, cancellationToken);
                output.WriteLine($"Two workers joined group 'workers' of {jobs} (MaxDeliver 2, dead letters to {deadLetters})");

                foreach (var job in work)
                {
                    await publisher.PublishAsync(jobs, job, cancellationToken: cancellationToken);
                }

                output.WriteLine($"Published {work.Length} jobs");
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(Patience);
                var workers = new[] { WorkAsync("worker 1", first, firstJobs, timeout.Token), WorkAsync("worker 2", second, secondJobs, timeout.Token) };

                await using var reader = await ZaichikClient.ConnectAsync(host, port, cancellationToken: cancellationToken);
                await using var dead = await reader.SubscribeAsync(deadLetters, new SubscribeOptions { AckPolicy = AckPolicy.None }, cancellationToken);
                ZaichikMessage? poison = null;
                await foreach (var message in dead.WithCancellation(timeout.Token))
                {
                    poison = message;
                    break;
                }

                while (done.Count < work.Length - 1 && !timeout.IsCancellationRequested)
                {
                    await Task.Delay(20, CancellationToken.None);
                }

                await timeout.CancelAsync();
                await Task.WhenAll(workers);
                if (poison is null || done.Count != work.Length - 1)
                {
                    error.WriteLine($"Expected {work.Length - 1} jobs done and one dead letter; got {done.Count} done and {(poison is null ? "no" : "a")} dead letter");
                    return 1;
                }

                output.WriteLine($"Dead letter: \"{poison.PayloadText}\" from {poison.Headers.GetText("zaichik-dead-letter-topic")} " +
                    $"sequence {poison.Headers.GetText("zaichik-dead-letter-sequence")} after {poison.Headers.GetText("zaichik-delivery-count")} deliveries");
                output.WriteLine($"Shared: worker 1 did {done.Values.Count(worker => worker == "worker 1")}, worker 2 did {done.Values.Count(worker => worker == "worker 2")}; each job once.");
                return 0;
            }
            catch (ZaichikConnectionException e)
            {
                error.WriteLine($"Zaichik server is not reachable at {host}:{port}; start it with: dotnet run --project Zaichik.Server");
                error.WriteLine($"  ({e.Message})");
                return 1;
            }
            catch (ZaichikException e)
            {
                error.WriteLine($"Groups failed: {e.Message}");
                return 1;
            }

            async Task WorkAsync(string name, ZaichikClient client, ZaichikSubscription subscription, CancellationToken stop)
            {
                try
                {
                    await foreach (var job in subscription.WithCancellation(stop))
                    {
                        if (job.PayloadText == "poison")
                        {
                            output.WriteLine($"{name}: \"{job.PayloadText}\" failed (delivery {job.DeliveryCount}), giving it back");
                            await client.NackAsync(job, cancellationToken: CancellationToken.None);
                            continue;
                        }

                        if (!done.TryAdd(job.PayloadText, name))
                        {
                            error.WriteLine($"{name}: \"{job.PayloadText}\" was already done by {done[job.PayloadText]}");
                        }

                        output.WriteLine($"{name}: did \"{job.PayloadText}\" (sequence {job.Sequence})");
                        await client.CommitAsync(job, CancellationToken.None);
                    }
                }
                catch (OperationCanceledException)
                {
                }
            }
        }
    }
}
