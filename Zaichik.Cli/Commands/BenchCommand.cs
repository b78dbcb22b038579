using System.Buffers.Binary;
using System.CommandLine;
using System.Globalization;
using HdrHistogram;
using Spectre.Console;
using Zaichik.Cli.Infrastructure;
using Zaichik.Client;

namespace Zaichik.Cli.Commands;

/// <summary>
/// <c>zaichik bench pub|sub</c>: a load run bounded by <c>--count</c>, with a live progress bar on a terminal and a
/// latency table at the end. <c>pub</c> measures publish-to-Ack; <c>sub</c> subscribes, then publishes <c>--count</c>
/// messages stamped with their send time while it consumes them, and measures publish-to-delivery.
/// </summary>
internal static class BenchCommand
{
    /// <summary>bench sub fails when no message arrived for this long before all of them did.</summary>
    private static readonly TimeSpan IdleLimit = TimeSpan.FromSeconds(10);

    /// <summary>Latencies are recorded in microseconds up to an hour; longer ones count as an hour.</summary>
    private const long HighestMicroseconds = 3_600_000_000;

    public static Command Create(VerbRunner run)
    {
        var bench = new Command("bench", "Measure publish or delivery throughput and latency with a bounded load");
        bench.Subcommands.Add(Verb("pub", "Publish --count messages and measure publish-to-Ack latency", run, PublishAsync));
        bench.Subcommands.Add(Verb("sub", "Publish --count messages while consuming them and measure publish-to-delivery latency", run, SubscribeAsync));
        return bench;
    }

    private static Command Verb(string name, string description, VerbRunner run, Func<CliContext, BenchRun, CancellationToken, Task<int>> action)
    {
        var topic = new Argument<string?>("topic")
        {
            Description = "The topic (default: a new bench-... topic)",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var count = new Option<int>("--count", "-n") { Description = "How many messages", DefaultValueFactory = _ => 10_000 };
        var size = new Option<int>("--size", "-s") { Description = "Payload bytes per message", DefaultValueFactory = _ => 128 };
        var inflight = new Option<int>("--inflight") { Description = "Publishes awaiting their Ack at once (for sub also the prefetch)", DefaultValueFactory = _ => 100 };
        count.Validators.Add(r => AtLeast(r, 1, "--count"));
        size.Validators.Add(r => AtLeast(r, name == "sub" ? sizeof(long) : 0, "--size"));
        inflight.Validators.Add(r => AtLeast(r, 1, "--inflight"));

        var command = new Command(name, description) { topic, count, size, inflight };
        var group = new Option<string?>("--group", "-g") { Description = "Consume as a member of this consumer group, committing each message on its own" };
        if (name == "sub")
        {
            command.Options.Add(group);
        }

        command.SetAction((parse, ct) => run(parse, (context, parse, ct) => action(
            context,
            new BenchRun(parse.GetValue(topic), parse.GetValue(count), parse.GetValue(size), parse.GetValue(inflight), name == "sub" ? parse.GetValue(group) : null),
            ct), ct));
        return command;
    }

    private static void AtLeast(System.CommandLine.Parsing.OptionResult result, int minimum, string name)
    {
        if (result.GetValueOrDefault<int>() < minimum)
        {
            result.AddError($"{name} must be at least {minimum}");
        }
    }

    private static async Task<int> PublishAsync(CliContext context, BenchRun run, CancellationToken cancellationToken)
    {
        await using var client = await context.ConnectAsync(cancellationToken);
        var topic = await TopicAsync(client, run, cancellationToken);
        var latencies = new LongConcurrentHistogram(1, HighestMicroseconds, 3);
        var payload = new byte[run.Size];
        Random.Shared.NextBytes(payload);
        var publisher = new Publisher(client, topic, run, context.Time, latencies, stamp: false, payload);

        var started = context.Time.GetTimestamp();
        await WithProgressAsync(context, "publishing", run.Count, () => publisher.Acknowledged, publisher.RunAsync(cancellationToken));
        var elapsed = context.Time.GetElapsedTime(started);

        await context.Out.WriteLineAsync(
            $"bench pub: {publisher.Acknowledged} of {run.Count} messages of {run.Size} bytes acknowledged by {topic} ({publisher.Duplicates} duplicates), {run.InFlight} in flight");
        context.Console.Write(ResultTable("publish to Ack", publisher.Acknowledged, run.Size, elapsed, latencies));
        return ExitCodes.Ok;
    }

    private static async Task<int> SubscribeAsync(CliContext context, BenchRun run, CancellationToken cancellationToken)
    {
        await using var client = await context.ConnectAsync(cancellationToken);
        var topic = await TopicAsync(client, run, cancellationToken);
        var latencies = new LongConcurrentHistogram(1, HighestMicroseconds, 3);
        await using var subscription = await client.SubscribeAsync(
            topic, new SubscribeOptions { From = Zaichik.Protocol.StartPosition.Latest, Prefetch = run.InFlight, Group = run.Group }, cancellationToken);
        var publisher = new Publisher(client, topic, run, context.Time, latencies: null, stamp: true, new byte[run.Size]);

        var received = 0;
        var started = context.Time.GetTimestamp();
        async Task ConsumeAsync()
        {
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            idle.CancelAfter(IdleLimit);
            var publishing = publisher.RunAsync(cancellationToken);
            // A publish that fails ends the wait for messages at once; its error is the one to report.
            _ = publishing.ContinueWith(
                _ =>
                {
                    try
                    {
                        idle.Cancel();
                    }
                    catch (ObjectDisposedException)
                    {
                    }
                },
                CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            try
            {
                await foreach (var message in subscription.WithCancellation(idle.Token))
                {
                    if (message.Payload.Length >= sizeof(long))
                    {
                        var sent = BinaryPrimitives.ReadInt64LittleEndian(message.Payload.Span);
                        Record(latencies, context.Time.GetElapsedTime(sent, context.Time.GetTimestamp()));
                    }

                    await client.CommitAsync(message, cancellationToken);
                    if (Interlocked.Increment(ref received) >= run.Count)
                    {
                        break;
                    }

                    idle.CancelAfter(IdleLimit);
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                await publishing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                if (publishing.IsFaulted)
                {
                    await publishing;
                }

                throw CliException.Failed($"bench sub: {received} of {run.Count} messages arrived, then none for {IdleLimit.TotalSeconds:0} s");
            }

            await publishing;
        }

        await WithProgressAsync(context, "consuming", run.Count, () => Volatile.Read(ref received), ConsumeAsync());
        var elapsed = context.Time.GetElapsedTime(started);

        await context.Out.WriteLineAsync(
            $"bench sub: {received} of {run.Count} messages of {run.Size} bytes received from {topic} ({publisher.Acknowledged} published, {publisher.Duplicates} duplicates), prefetch {run.InFlight}{(run.Group is null ? "" : $", as a member of group {run.Group}")}");
        context.Console.Write(ResultTable("publish to delivery", received, run.Size, elapsed, latencies));
        return ExitCodes.Ok;
    }

    /// <summary>The topic named, or a new one named for this run.</summary>
    private static async Task<string> TopicAsync(ZaichikClient client, BenchRun run, CancellationToken cancellationToken)
    {
        if (run.Topic is { } named)
        {
            return named;
        }

        var topic = $"bench-{Guid.NewGuid():N}"[..18];
        await client.CreateTopicAsync(topic, cancellationToken: cancellationToken);
        return topic;
    }

    /// <summary>Runs <paramref name="work"/>; on a terminal with a live progress bar of <paramref name="done"/> out of <paramref name="total"/>.</summary>
    private static async Task WithProgressAsync(CliContext context, string label, int total, Func<int> done, Task work)
    {
        if (!context.IsTerminal)
        {
            await work;
            return;
        }

        await context.Console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async progress =>
            {
                var task = progress.AddTask(label, maxValue: total);
                while (!work.IsCompleted)
                {
                    task.Value = done();
                    await Task.WhenAny(work, Task.Delay(TimeSpan.FromMilliseconds(100), context.Time));
                }

                task.Value = done();
            });
        await work;
    }

    private static void Record(HistogramBase latencies, TimeSpan latency) =>
        latencies.RecordValue(Math.Clamp((long)(latency.Ticks / (double)TimeSpan.TicksPerMicrosecond), 1, HighestMicroseconds));

    private static Table ResultTable(string measured, int messages, int size, TimeSpan elapsed, HistogramBase latencies)
    {
        var seconds = Math.Max(elapsed.TotalSeconds, 1e-9);
        var table = new Table().AddColumns("Messages", "Elapsed", "msgs/s", "MB/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms");
        table.Title = new TableTitle($"latency: {measured}");
        table.AddRow(
            messages.ToString(CultureInfo.InvariantCulture),
            elapsed.TotalSeconds.ToString("0.000 s", CultureInfo.InvariantCulture),
            (messages / seconds).ToString("0", CultureInfo.InvariantCulture),
            (messages * (double)size / 1_000_000 / seconds).ToString("0.00", CultureInfo.InvariantCulture),
            Milliseconds(latencies, 50),
            Milliseconds(latencies, 90),
            Milliseconds(latencies, 99),
            Milliseconds(latencies, 99.9),
            latencies.TotalCount == 0 ? "-" : (latencies.GetMaxValue() / 1000.0).ToString("0.000", CultureInfo.InvariantCulture));
        return table;
    }

    private static string Milliseconds(HistogramBase latencies, double percentile) =>
        latencies.TotalCount == 0 ? "-" : (latencies.GetValueAtPercentile(percentile) / 1000.0).ToString("0.000", CultureInfo.InvariantCulture);

    private sealed record BenchRun(string? Topic, int Count, int Size, int InFlight, string? Group = null);

    /// <summary><c>InFlight</c> workers publishing until <c>Count</c> messages were sent; each records publish-to-Ack.</summary>
    private sealed class Publisher(ZaichikClient client, string topic, BenchRun run, TimeProvider time, HistogramBase? latencies, bool stamp, byte[] payload)
    {
        private int _next;
        private int _acknowledged;
        private int _duplicates;

        public int Acknowledged => Volatile.Read(ref _acknowledged);

        public int Duplicates => Volatile.Read(ref _duplicates);

        public Task RunAsync(CancellationToken cancellationToken) =>
            Task.WhenAll(Enumerable.Range(0, Math.Min(run.InFlight, run.Count)).Select(_ => Task.Run(() => WorkAsync(cancellationToken), cancellationToken)));

        private async Task WorkAsync(CancellationToken cancellationToken)
        {
            var body = payload;
            while (Interlocked.Increment(ref _next) <= run.Count)
            {
                var sent = time.GetTimestamp();
                if (stamp)
                {
                    // A stamped payload gets its own buffer: the client keeps a publish's bytes to send again after a reconnect.
                    body = (byte[])payload.Clone();
                    BinaryPrimitives.WriteInt64LittleEndian(body, sent);
                }

                var result = await client.PublishAsync(topic, body, key: null, cancellationToken);
                if (latencies is not null)
                {
                    Record(latencies, time.GetElapsedTime(sent));
                }

                if (result.Duplicate)
                {
                    Interlocked.Increment(ref _duplicates);
                }

                Interlocked.Increment(ref _acknowledged);
            }
        }
    }
}
