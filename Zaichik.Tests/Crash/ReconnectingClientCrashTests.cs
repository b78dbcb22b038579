using System.Collections.Concurrent;
using Shouldly;
using Xunit;
using Xunit.Abstractions;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Tests.Processes;

namespace Zaichik.Tests.Crash;

/// <summary>
/// The client's promise under the harshest restart: the broker process is SIGKILLed mid-stream and started again on
/// the same folder and port, while a publisher keeps 1,000 publishes in flight and a durable consumer commits. Nobody
/// in the application reconnects anything.
/// </summary>
public sealed class ReconnectingClientCrashTests(ITestOutputHelper output) : IDisposable
{
    private const string Topic = "payments";
    private const int Messages = 20_000;
    private const int InFlight = 1_000;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);
    private readonly string _dataPath = Path.Combine(Path.GetTempPath(), "zaichik-reconnect-crash-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task A_publisher_and_a_durable_consumer_carry_on_through_a_SIGKILL_and_nothing_acknowledged_is_lost_or_doubled()
    {
        var broker = await BrokerProcess.StartAsync(_dataPath);
        var port = broker.Port;
        var options = new ZaichikClientOptions
        {
            Host = "127.0.0.1",
            Port = port,
            RequestTimeout = Patience,
            CloseTimeout = TimeSpan.FromSeconds(1),
            Reconnect = new() { MinDelay = TimeSpan.FromMilliseconds(20), MaxDelay = TimeSpan.FromMilliseconds(200) },
        };
        try
        {
            await using var publisher = await ZaichikClient.ConnectAsync(options);
            await using var consumer = await ZaichikClient.ConnectAsync(options);
            var reconnects = 0;
            publisher.Reconnected += (_, _) => Interlocked.Increment(ref reconnects);
            await publisher.CreateTopicAsync(Topic, new TopicOptions { Durability = Durability.Always, RetentionTtl = TimeSpan.FromHours(1) });

            var seen = new ConcurrentDictionary<string, long>();
            var seenTwice = 0;
            var lastSeen = 0L;
            var outOfOrder = 0;
            using var stop = new CancellationTokenSource(Patience);
            await using var subscription = await consumer.SubscribeAsync(Topic, new SubscribeOptions { DurableName = "audit", Prefetch = 100 });
            var consuming = Task.Run(async () =>
            {
                await foreach (var message in subscription.WithCancellation(stop.Token))
                {
                    if (!seen.TryAdd(message.PayloadText, message.Sequence))
                    {
                        Interlocked.Increment(ref seenTwice);
                    }

                    if (message.Sequence <= lastSeen)
                    {
                        outOfOrder++;
                    }

                    lastSeen = message.Sequence;
                    await consumer.CommitAsync(message);
                    if (seen.Count == Messages)
                    {
                        return;
                    }
                }
            });

            var acks = new ConcurrentDictionary<string, long>();
            var window = new SemaphoreSlim(InFlight);
            var publishing = new List<Task>(Messages);
            var killed = false;
            for (var i = 0; i < Messages; i++)
            {
                await window.WaitAsync(stop.Token);
                var payload = $"m{i:D6}";
                publishing.Add(PublishAsync(payload));
                if (!killed && acks.Count >= Messages / 4)
                {
                    killed = true;
                    output.WriteLine($"SIGKILL after {acks.Count} acks, {i + 1} publishes made");
                    await broker.KillAsync();
                    await broker.DisposeAsync();
                    broker = await BrokerProcess.StartAsync(_dataPath, port);
                }
            }

            await Task.WhenAll(publishing).WaitAsync(Patience);
            await consuming.WaitAsync(Patience);

            killed.ShouldBeTrue();
            Volatile.Read(ref reconnects).ShouldBe(1);
            acks.Count.ShouldBe(Messages, "every publish was acknowledged in the end, through the reconnect");
            seenTwice.ShouldBe(0, "the consumer saw no message twice");
            outOfOrder.ShouldBe(0);
            seen.Count.ShouldBe(Messages, "the consumer saw every message");

            // What the broker holds: each acknowledged message exactly once, at the sequence its Ack named.
            await using var auditor = await ZaichikClient.ConnectAsync(options);
            await using var everything = await auditor.SubscribeAsync(Topic, new SubscribeOptions { Prefetch = 1000, AutoCommit = true });
            var stored = new Dictionary<string, long>();
            var duplicates = 0;
            await foreach (var message in everything.WithCancellation(stop.Token))
            {
                if (!stored.TryAdd(message.PayloadText, message.Sequence))
                {
                    duplicates++;
                }

                if (stored.Count + duplicates >= Messages && message.Sequence >= acks.Values.Max())
                {
                    break;
                }
            }

            duplicates.ShouldBe(0, "no acknowledged message was stored twice");
            stored.Count.ShouldBe(Messages);
            foreach (var (payload, sequence) in acks)
            {
                stored[payload].ShouldBe(sequence, $"{payload} is stored at the sequence its Ack named");
            }

            async Task PublishAsync(string payload)
            {
                try
                {
                    var ack = await publisher.PublishAsync(Topic, payload);
                    acks[payload] = ack.Sequence;
                }
                finally
                {
                    window.Release();
                }
            }
        }
        finally
        {
            output.WriteLine(broker.Output);
            await broker.DisposeAsync();
        }
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dataPath, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
