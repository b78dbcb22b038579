using System.Buffers.Binary;
using System.Diagnostics;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Benchmarks.Workloads;

/// <summary>
/// W3: four subscriber connections follow a topic live while one producer publishes at a fixed rate. Each
/// payload starts with its send time (<see cref="Stopwatch.GetTimestamp"/>), so each subscriber records
/// publish-to-delivery latency; every subscriber must receive every message.
/// </summary>
internal sealed class FanOutWorkload : IWorkload
{
    private const int Subscribers = 4;
    private const int Prefetch = 1_000;
    private const int CommitEvery = 250;

    /// <summary>Bounds memory if acks stall; at the target rate and latency only a few dozen are ever in flight.</summary>
    private const int ProducerWindow = 1_000;

    /// <summary>How long subscribers may take, after the last Ack, to receive the rest.</summary>
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(5);

    public string Id => "w3";

    public string Title => "W3 fan-out latency";

    public async Task RunAsync(BenchmarkContext context, ResultTable results, CancellationToken cancellationToken)
    {
        var rate = context.Settings.FanOutRate;
        var total = (long)(rate * context.Settings.FanOutDuration.TotalSeconds);
        var topic = context.NewTopicName(Id);

        await using var producer = await context.ConnectAsync(cancellationToken);
        await producer.CreateTopicAsync(topic, TopicOptions.Default, cancellationToken);

        using var stopReading = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var readers = new List<LiveReader>();
        try
        {
            for (var i = 0; i < Subscribers; i++)
            {
                var client = await context.ConnectAsync(cancellationToken);
                var reader = new LiveReader(client, (int)Math.Min(total, int.MaxValue));
                readers.Add(reader);
                await reader.SubscribeAsync(topic, cancellationToken);
            }

            foreach (var reader in readers)
            {
                reader.Start(stopReading.Token);
            }

            var before = ResourceSnapshot.Take();
            var (published, maxLagMs) = await PublishPacedAsync(producer, topic, rate, total, cancellationToken);
            var publishing = ResourceSnapshot.Take().Since(before);

            // Subscribers cannot know the count until now; give them a bounded time to receive the rest.
            var drainUntil = Stopwatch.GetTimestamp() + (long)(DrainTimeout.TotalSeconds * Stopwatch.Frequency);
            while (readers.Any(reader => reader.Received < published)
                && Stopwatch.GetTimestamp() < drainUntil
                && !cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(10, CancellationToken.None);
            }

            await stopReading.CancelAsync();
            await Task.WhenAll(readers.Select(reader => reader.Completion));

            var delivered = readers.Sum(reader => reader.Received);
            var lost = readers.Sum(reader => Math.Max(0, published - reader.Received));
            var extra = readers.Sum(reader => Math.Max(0, reader.Received - published));
            var outOfOrder = readers.Sum(reader => reader.OutOfOrder);
            var latency = LatencyRecorder.Summarize(readers.Select(reader => reader.Latencies));
            var timedOut = cancellationToken.IsCancellationRequested;
            results.Add(new WorkloadResult
            {
                Name = $"W3 fan-out, 4 subscribers, {rate:N0} msgs/s for {context.Settings.FanOutDuration.TotalSeconds:0} s",
                Messages = published,
                Elapsed = publishing.Elapsed,
                Latency = latency,
                Usage = publishing,
                Target = "p99 <= 1 ms, 0 lost",
                TargetMet = !timedOut && lost == 0 && latency.Count > 0 && latency.P99Ms <= 1.0,
                Peers = "p99: Redis 0.52 ms, NATS 7 ms",
                Status = timedOut ? WorkloadStatus.TimedOut : lost == 0 && extra == 0 && outOfOrder == 0 ? WorkloadStatus.Completed : WorkloadStatus.Failed,
                Notes = $"latency is publish to delivery over {latency.Count:N0} deliveries; delivered {delivered:N0} of {Subscribers} x {published:N0}, " +
                    $"lost {lost:N0}, extra {extra:N0}, out of order {outOfOrder:N0}; producer at most {maxLagMs:0.0} ms behind schedule",
            });
        }
        finally
        {
            await stopReading.CancelAsync();
            foreach (var reader in readers)
            {
                await reader.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Publishes <paramref name="total"/> messages at <paramref name="rate"/> per second: about every millisecond it
    /// sends whatever the schedule says is due, so sleep jitter changes burst sizes, not the rate. Returns how many
    /// were published and how far (ms) the producer ever fell behind the schedule.
    /// </summary>
    /// <remarks>
    /// The loop runs on a dedicated thread and sleeps with <see cref="Thread.Sleep(int)"/>: on the 2-core test VM
    /// <c>Task.Delay(1)</c> and <c>PeriodicTimer</c> wake after 4.4 ms (p50), <c>Thread.Sleep(1)</c> after 1.1 ms,
    /// and 4 ms bursts of ~90 messages would add their own queueing to every latency.
    /// </remarks>
    internal static async Task<(long Published, double MaxLagMs)> PublishPacedAsync(
        ZaichikClient producer, string topic, int rate, long total, CancellationToken cancellationToken)
    {
        var window = new PublishWindow(ProducerWindow);
        var maxLagTicks = await Task.Factory.StartNew(
            () => PublishPaced(producer, topic, rate, total, window, cancellationToken),
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);
        await window.DrainAsync();
        return (window.Issued, maxLagTicks * 1000.0 / Stopwatch.Frequency);
    }

    private static long PublishPaced(ZaichikClient producer, string topic, int rate, long total, PublishWindow window, CancellationToken cancellationToken)
    {
        // One payload buffer per window slot: a payload must not change until its publish completes.
        var payloads = new byte[ProducerWindow][];
        for (var i = 0; i < payloads.Length; i++)
        {
            payloads[i] = BenchmarkContext.NewPayload();
        }

        var ticksPerMessage = (double)Stopwatch.Frequency / rate;
        var start = Stopwatch.GetTimestamp();
        long sent = 0;
        long maxLagTicks = 0;
        while (sent < total && !cancellationToken.IsCancellationRequested)
        {
            var elapsed = Stopwatch.GetTimestamp() - start;
            var due = Math.Min(total, (long)(elapsed / ticksPerMessage) + 1);
            if (due > sent)
            {
                maxLagTicks = Math.Max(maxLagTicks, elapsed - (long)(sent * ticksPerMessage));
            }

            while (sent < due)
            {
                // Blocking is fine on this dedicated thread, and only happens if 1,000 publishes are unanswered.
                var reserve = window.ReserveAsync();
                var slot = reserve.IsCompletedSuccessfully ? reserve.Result : reserve.AsTask().GetAwaiter().GetResult();
                var payload = payloads[slot];
                BinaryPrimitives.WriteInt64LittleEndian(payload, Stopwatch.GetTimestamp());
                window.Issue(slot, producer.PublishAsync(topic, payload));
                sent++;
            }

            Thread.Sleep(1);
        }

        return maxLagTicks;
    }

    /// <summary>One subscriber connection recording the latency of every delivery.</summary>
    private sealed class LiveReader(ZaichikClient client, int expected) : IAsyncDisposable
    {
        private ZaichikSubscription? _subscription;
        private long _received;

        public LatencyRecorder Latencies { get; } = new(expected);

        public long Received => Volatile.Read(ref _received);

        public long OutOfOrder { get; private set; }

        public Task Completion { get; private set; } = Task.CompletedTask;

        public async Task SubscribeAsync(string topic, CancellationToken cancellationToken) =>
            _subscription = await client.SubscribeAsync(
                topic, new SubscribeOptions { From = StartPosition.Latest, Prefetch = Prefetch }, cancellationToken);

        public void Start(CancellationToken stop) => Completion = Task.Run(() => ReadAsync(stop));

        public async ValueTask DisposeAsync()
        {
            await Completion.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (_subscription is not null)
            {
                await _subscription.DisposeAsync();
            }

            await client.DisposeAsync();
        }

        private async Task ReadAsync(CancellationToken stop)
        {
            var lastSequence = -1L;
            await foreach (var message in _subscription!.WithCancellation(stop))
            {
                var now = Stopwatch.GetTimestamp();
                Latencies.Record(now - BinaryPrimitives.ReadInt64LittleEndian(message.Payload.Span));
                if (message.Sequence <= lastSequence)
                {
                    OutOfOrder++;
                }

                lastSequence = message.Sequence;
                var received = _received + 1;
                Volatile.Write(ref _received, received);
                if (received % CommitEvery == 0)
                {
                    await client.CommitAsync(message, CancellationToken.None);
                }
            }
        }
    }
}
