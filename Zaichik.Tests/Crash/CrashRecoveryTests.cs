using System.Diagnostics;
using System.Globalization;
using Xunit.Abstractions;
using Zaichik.Client;
using Zaichik.Protocol;

using Zaichik.Tests.Processes;

namespace Zaichik.Tests.Crash;

/// <summary>
/// The broker as a child process, killed with SIGKILL while publishers keep an Always topic busy, then restarted
/// on the same data folder. Each kill ends a generation; the log accumulates across generations, so later
/// restarts also prove that recovering from a crash does not disturb what earlier recoveries restored.
/// Set ZAICHIK_CRASH_SEED to replay a run's kill delays.
/// </summary>
public sealed class CrashRecoveryTests(ITestOutputHelper output) : IDisposable
{
    private const string Topic = "crash";
    private const int Generations = 3;
    private const int Publishers = 4;
    private const int Window = 50;
    private const int MinKillDelayMs = 200;
    private const int MaxKillDelayMs = 1500;

    private static readonly TopicOptions AlwaysDurable = new() { Durability = Durability.Always, RetentionTtl = TimeSpan.FromHours(1) };

    /// <summary>Reading back the whole log and its sentinel; generous for a 2-core machine reading ~10^5 messages.</summary>
    private static readonly TimeSpan ReadDeadline = TimeSpan.FromSeconds(60);

    private static readonly TimeSpan RequestDeadline = TimeSpan.FromSeconds(20);

    /// <summary>How long publishers may take to get their first durable ack after connecting.</summary>
    private static readonly TimeSpan FirstAckDeadline = TimeSpan.FromSeconds(15);

    /// <summary>How long after the kill publishers may still be running before they are told to stop.</summary>
    private static readonly TimeSpan PublisherStopDeadline = TimeSpan.FromSeconds(20);

    // Each round reconnects with fresh clients itself, and counts a publish the kill interrupted as unacknowledged.
    private static readonly ZaichikClientOptions ClientOptions = new() { CloseTimeout = TimeSpan.FromSeconds(1), Reconnect = new() { Enabled = false } };

    private readonly string _dataPath = Path.Combine(Path.GetTempPath(), "zaichik-crash-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task Acknowledged_Always_publishes_survive_repeated_SIGKILL_exactly_once_and_in_publisher_order()
    {
        var seed = Environment.GetEnvironmentVariable("ZAICHIK_CRASH_SEED") is { Length: > 0 } fixedSeed
            ? int.Parse(fixedSeed, CultureInfo.InvariantCulture)
            : Random.Shared.Next();
        output.WriteLine($"seed {seed} (replay with ZAICHIK_CRASH_SEED={seed}); data in {_dataPath}");
        var random = new Random(seed);
        var ledger = new CrashLedger();
        IReadOnlyList<RecoveredMessage> previousRead = [];
        var total = Stopwatch.StartNew();

        var broker = await BrokerProcess.StartAsync(_dataPath);
        try
        {
            await using (var admin = await ConnectAsync(broker))
            {
                await admin.CreateTopicAsync(Topic, AlwaysDurable).AsTask().WaitAsync(RequestDeadline);
            }

            for (var generation = 0; generation < Generations; generation++)
            {
                var killDelay = TimeSpan.FromMilliseconds(random.Next(MinKillDelayMs, MaxKillDelayMs + 1));
                var run = await PublishUntilKilledAsync(broker, generation, killDelay);
                var outcomes = run.Outcomes;
                foreach (var outcome in outcomes)
                {
                    ledger.Record(outcome);
                }

                var restart = Stopwatch.StartNew();
                try
                {
                    broker = await BrokerProcess.StartAsync(_dataPath);
                }
                catch (ShouldAssertException failure)
                {
                    throw new ShouldAssertException($"seed {seed}: the server did not restart after kill {generation}: {failure.Message}");
                }

                var restartTime = restart.Elapsed;

                var reading = Stopwatch.StartNew();
                var read = await ReadToSentinelAsync(broker, generation, ledger);
                var readTime = reading.Elapsed;

                var audit = RecoveredLogAudit.Check(read, ledger, previousRead, generation);
                output.WriteLine(
                    $"generation {generation}: first acks after {run.FirstAckAfter.TotalMilliseconds:0} ms, killed {run.KilledAfter.TotalMilliseconds:0} ms after publishing began "
                    + $"(at {run.KilledAt:HH:mm:ss.fff}, {killDelay.TotalMilliseconds:0} ms after the first acks); "
                    + $"this generation attempted {outcomes.Sum(o => o.Attempted):N0}, acknowledged {outcomes.Sum(o => o.Acknowledged.Count):N0}, "
                    + $"unacknowledged but present {audit.UnacknowledgedPresentInGeneration:N0}; "
                    + $"whole log: acknowledged {audit.Acknowledged:N0}, present {audit.Present:N0}, unacknowledged but present {audit.UnacknowledgedPresent:N0}, missing {audit.Missing:N0}, problems {audit.ProblemCount}; "
                    + $"restart {restartTime.TotalSeconds:0.0} s, read {readTime.TotalSeconds:0.0} s");
                foreach (var outcome in outcomes)
                {
                    output.WriteLine($"  p{outcome.Publisher}: attempted {outcome.Attempted:N0}, acknowledged {outcome.Acknowledged.Count:N0}, ended by {outcome.Ending}");
                }

                audit.ProblemCount.ShouldBe(
                    0,
                    $"seed {seed}, generation {generation}: the recovered log is wrong:{Environment.NewLine}{audit.Problems}"
                    + $"{Environment.NewLine}--- the restarted server wrote:{Environment.NewLine}{broker.Output}");
                previousRead = read;
            }

            output.WriteLine($"{Generations} kills and restarts in {total.Elapsed.TotalSeconds:0.0} s");
        }
        finally
        {
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
            // Already gone, or the server never created it.
        }
    }

    /// <summary>
    /// Starts <see cref="Publishers"/> publishers, each on its own connection, waits until every one of them has
    /// had a durable ack (so the kill lands while commits and acks are flowing, not during warm-up), kills the
    /// broker <paramref name="killDelay"/> later and waits for every publisher to notice.
    /// </summary>
    private static async Task<PublishingRun> PublishUntilKilledAsync(BrokerProcess broker, int generation, TimeSpan killDelay)
    {
        var clients = new List<ZaichikClient>();
        using var stop = new CancellationTokenSource();
        try
        {
            for (var publisher = 0; publisher < Publishers; publisher++)
            {
                clients.Add(await ConnectAsync(broker));
            }

            var firstAcks = clients.Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
            var publishing = Stopwatch.StartNew();
            var publishers = clients
                .Select((client, publisher) => CrashPublisher.RunAsync(client, Topic, generation, publisher, Window, firstAcks[publisher], stop.Token))
                .ToArray();

            var flowing = Task.WhenAll(firstAcks.Select(first => first.Task));
            if (await Task.WhenAny(flowing, Task.WhenAny(publishers), Task.Delay(FirstAckDeadline)) != flowing)
            {
                await broker.KillAsync();
                var early = await Task.WhenAll(publishers).WaitAsync(PublisherStopDeadline);
                throw new ShouldAssertException(
                    $"generation {generation}: not every publisher had a durable ack within {FirstAckDeadline.TotalSeconds} s:{Environment.NewLine}"
                    + string.Join(Environment.NewLine, early.Select(o => $"p{o.Publisher}: attempted {o.Attempted}, acknowledged {o.Acknowledged.Count}, ended by {o.Ending}"))
                    + $"{Environment.NewLine}--- the server wrote:{Environment.NewLine}{broker.Output}");
            }

            var firstAckAfter = publishing.Elapsed;
            await Task.Delay(killDelay);
            var runningAtKill = publishers.Count(publisher => !publisher.IsCompleted);
            var killedAt = DateTime.Now;
            var killedAfter = publishing.Elapsed;
            await broker.KillAsync();

            stop.CancelAfter(PublisherStopDeadline);
            var outcomes = await Task.WhenAll(publishers).WaitAsync(PublisherStopDeadline * 2);
            runningAtKill.ShouldBe(
                Publishers,
                $"generation {generation}: publishers stopped before the kill:{Environment.NewLine}"
                + string.Join(Environment.NewLine, outcomes.Select(o => $"p{o.Publisher}: {o.Ending}"))
                + $"{Environment.NewLine}--- the server wrote:{Environment.NewLine}{broker.Output}");
            return new PublishingRun(outcomes, firstAckAfter, killedAfter, killedAt);
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync().AsTask().WaitAsync(RequestDeadline);
            }

            await broker.DisposeAsync();
        }
    }

    /// <summary>
    /// Subscribes from the start of the retained log, publishes this restart's sentinel, and reads until it
    /// arrives: everything recovered lies before it, so reaching it means the whole log was read, without sleeping.
    /// </summary>
    private static async Task<List<RecoveredMessage>> ReadToSentinelAsync(BrokerProcess broker, int generation, CrashLedger ledger)
    {
        await using var client = await ConnectAsync(broker);

        // The topic must have come back with its settings: creating it again with the same ones is a no-op.
        await client.CreateTopicAsync(Topic, AlwaysDurable).AsTask().WaitAsync(RequestDeadline);
        await using var subscription = await client
            .SubscribeAsync(Topic, new SubscribeOptions { From = StartPosition.Retained, Prefetch = 1000, AutoCommit = true })
            .AsTask().WaitAsync(RequestDeadline);

        var sentinel = CrashPayload.Sentinel(generation);
        var published = await client.PublishAsync(Topic, sentinel).AsTask().WaitAsync(RequestDeadline);
        published.Durable.ShouldBeTrue($"the sentinel of generation {generation} was acknowledged without being durable");
        ledger.RecordSentinel(generation);

        using var deadline = new CancellationTokenSource(ReadDeadline);
        var read = new List<RecoveredMessage>();
        await foreach (var message in subscription.WithCancellation(deadline.Token))
        {
            read.Add(new RecoveredMessage(message.Sequence, message.PayloadText));
            if (message.PayloadText == sentinel)
            {
                return read;
            }
        }

        var last = read.Count > 0 ? $"'{read[^1].Payload}' at sequence {read[^1].BrokerSequence}" : "none";
        throw new ShouldAssertException(
            deadline.IsCancellationRequested
                ? $"'{sentinel}' (sequence {published.Sequence}) did not arrive within {ReadDeadline.TotalSeconds} s; read {read.Count:N0} messages, the last {last}"
                : $"the subscription ended before '{sentinel}' (sequence {published.Sequence}) arrived; read {read.Count:N0} messages, the last {last}");
    }

    private static async Task<ZaichikClient> ConnectAsync(BrokerProcess broker) =>
        await ZaichikClient.ConnectAsync("127.0.0.1", broker.Port, ClientOptions).AsTask().WaitAsync(RequestDeadline);

    private sealed record PublishingRun(PublisherOutcome[] Outcomes, TimeSpan FirstAckAfter, TimeSpan KilledAfter, DateTime KilledAt);
}
