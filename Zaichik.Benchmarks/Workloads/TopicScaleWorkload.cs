using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Benchmarks.Workloads;

/// <summary>
/// Topics: how many topics one broker holds and what they cost. The broker runs as its own process (so its memory is
/// its own): <c>--topics</c> topics (100,000 by default) are created through CreateTopic (1 h retention, the server's
/// default durability) over 4 connections with 1,000 requests in flight, then one 100-byte message is published to
/// each. Broker RSS, peak RSS and open descriptors are read from /proc. The broker is then stopped with SIGTERM and
/// started again on the same folder; the time until it listens is the restart time, and a sample of topics is read back
/// to check each holds exactly its one message.
/// </summary>
internal sealed class TopicScaleWorkload : IWorkload
{
    private const int Connections = 4;
    private const int Window = 1_000;
    private const int Sample = 200;

    private static readonly TimeSpan StartDeadline = TimeSpan.FromMinutes(2);

    public string Id => "topics";

    public string Title => "Topics";

    public async Task RunAsync(BenchmarkContext context, ResultTable results, CancellationToken cancellationToken)
    {
        var count = context.Settings.Topics;
        var dataPath = Path.Combine(Path.GetTempPath(), $"zaichik-topics-{Guid.NewGuid():N}");
        try
        {
            var (broker, started) = await BrokerProcess.StartAsync(dataPath, cancellationToken);
            results.Add(new WorkloadResult
            {
                Name = "Topics: broker start, empty folder",
                Elapsed = started,
                Notes = Invariant($"to listening {started.TotalSeconds:0.00} s; RSS {broker.RssMiB():0} MiB"),
            });

            var names = Enumerable.Range(0, count).Select(i => $"scale-{i}").ToArray();
            var payload = BenchmarkContext.NewPayload();
            var clients = new List<ZaichikClient>();
            try
            {
                for (var i = 0; i < Connections; i++)
                {
                    clients.Add(await ZaichikClient.ConnectAsync("127.0.0.1", broker.Port, cancellationToken: cancellationToken));
                }

                var retained = new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) };
                var cpu = broker.CpuTime();
                var created = await RunAsync(clients, names, (client, name) => client.CreateTopicAsync(name, retained).AsTask(), cancellationToken);
                results.Add(Row(Invariant($"Topics: create {count:N0} (4 connections, 1,000 in flight)"), count, created, broker, broker.CpuTime() - cpu));
                cpu = broker.CpuTime();
                var published = await RunAsync(clients, names, async (client, name) => await client.PublishAsync(name, payload), cancellationToken);
                results.Add(Row(Invariant($"Topics: one 100 B message to each of {count:N0}"), count, published, broker, broker.CpuTime() - cpu) with
                {
                    Target = ">= 10k topics/s created, RSS < 1.5 GiB",
                    TargetMet = count / created.TotalSeconds >= 10_000 && broker.PeakRssMiB() < 1536,
                });
            }
            finally
            {
                foreach (var client in clients)
                {
                    await client.DisposeAsync();
                }
            }

            var stopped = await broker.StopAsync();
            var (restarted, restart) = await BrokerProcess.StartAsync(dataPath, cancellationToken);
            results.Add(new WorkloadResult
            {
                Name = Invariant($"Topics: restart with {count:N0} topics"),
                Elapsed = restart,
                Target = "< 10 s to listening",
                TargetMet = restart < TimeSpan.FromSeconds(10),
                Notes = Invariant($"SIGTERM stop took {stopped.TotalSeconds:0.00} s; to listening {restart.TotalSeconds:0.00} s; RSS after {restarted.RssMiB():0} MiB, {restarted.OpenFiles()} descriptors"),
            });

            var (held, readIn, firstMessage) = await ReadSampleAsync(restarted.Port, names, cancellationToken);
            results.Add(new WorkloadResult
            {
                Name = Invariant($"Topics: read back {Sample} of them after the restart"),
                Messages = Sample,
                Elapsed = readIn,
                Status = held == Sample ? WorkloadStatus.Completed : WorkloadStatus.Failed,
                Notes = Invariant($"{held} of {Sample} hold exactly their one message (each opens on first use, then 20 ms are waited for anything more); Subscribe to first message {firstMessage.TotalMilliseconds / Sample:0.0} ms on average; RSS {restarted.RssMiB():0} MiB"),
            });
            await restarted.StopAsync();
        }
        finally
        {
            try
            {
                Directory.Delete(dataPath, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static WorkloadResult Row(string name, int count, TimeSpan elapsed, BrokerProcess broker, TimeSpan brokerCpu) => new()
    {
        Name = name,
        Messages = count,
        Elapsed = elapsed,
        Notes = Invariant($"{count / elapsed.TotalSeconds:N0} topics/s; broker CPU {brokerCpu.TotalSeconds:0.0} s ({brokerCpu.TotalMilliseconds * 1000 / count:0} us per topic), RSS {broker.RssMiB():0} MiB (peak {broker.PeakRssMiB():0} MiB), {broker.OpenFiles()} descriptors"),
    };

    /// <summary>Runs <paramref name="operation"/> for every name, spread over the clients, <see cref="Window"/> in flight in all.</summary>
    private static async Task<TimeSpan> RunAsync(List<ZaichikClient> clients, string[] names, Func<ZaichikClient, string, Task> operation, CancellationToken cancellationToken)
    {
        var started = Stopwatch.StartNew();
        await Task.WhenAll(clients.Select((client, index) => Task.Run(async () =>
        {
            using var window = new SemaphoreSlim(Window / clients.Count);
            var pending = new List<Task>();
            for (var i = index; i < names.Length && !cancellationToken.IsCancellationRequested; i += clients.Count)
            {
                await window.WaitAsync(cancellationToken);
                pending.Add(Release(operation(client, names[i]), window));
            }

            await Task.WhenAll(pending);
        }, cancellationToken)));
        return started.Elapsed;

        static async Task Release(Task task, SemaphoreSlim window)
        {
            try
            {
                await task;
            }
            finally
            {
                window.Release();
            }
        }
    }

    private static async Task<(int Held, TimeSpan Took, TimeSpan ToFirstMessage)> ReadSampleAsync(int port, string[] names, CancellationToken cancellationToken)
    {
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", port, cancellationToken: cancellationToken);
        var started = Stopwatch.StartNew();
        var held = 0;
        var toFirstMessage = TimeSpan.Zero;
        for (var k = 0; k < Sample; k++)
        {
            var name = names[(int)((long)names.Length * k / Sample)];
            var subscribing = Stopwatch.StartNew();
            await using var subscription = await client.SubscribeAsync(name, new SubscribeOptions { Prefetch = 10 }, cancellationToken);
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            wait.CancelAfter(TimeSpan.FromSeconds(5));
            var seen = 0;
            try
            {
                await foreach (var message in subscription.WithCancellation(wait.Token))
                {
                    seen++;
                    if (seen == 1)
                    {
                        toFirstMessage += subscribing.Elapsed;
                    }

                    if (message.Sequence == 1)
                    {
                        // Nothing but the one message may follow: look a little longer.
                        wait.CancelAfter(TimeSpan.FromMilliseconds(20));
                    }
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }

            held += seen == 1 ? 1 : 0;
        }

        return (held, started.Elapsed, toFirstMessage);
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
