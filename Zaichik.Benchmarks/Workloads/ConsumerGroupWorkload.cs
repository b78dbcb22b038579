using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using Zaichik.Client;

namespace Zaichik.Benchmarks.Workloads;

/// <summary>
/// WG: a consumer group of four member connections (prefetch 256 each) shares a fresh retained topic while one producer
/// publishes the message count into it with 1,000 in flight; each member commits every message on its own
/// (<see cref="ZaichikClient.CommitAsync(ZaichikMessage, CancellationToken)"/>) as soon as it receives it. Each payload
/// starts with its send time (<see cref="Stopwatch.GetTimestamp"/>), so each member records publish-to-delivery latency.
/// The clock runs from the first publish to the Commit of the last message to arrive. Every sequence must reach exactly
/// one member, on its first delivery. Then the same with a group of one member, for comparison.
/// </summary>
internal sealed class ConsumerGroupWorkload : IWorkload
{
    private const string GroupName = "wg";
    private const int Members = 4;
    private const int Prefetch = 256;

    /// <summary>After the last message, how long (untimed) the members keep reading to catch a repeat.</summary>
    private static readonly TimeSpan QuietPeriod = TimeSpan.FromMilliseconds(500);

    public string Id => "wg";

    public string Title => "WG consumer group";

    public async Task RunAsync(BenchmarkContext context, ResultTable results, CancellationToken cancellationToken)
    {
        var messages = context.Settings.Messages;
        var group = await RunGroupAsync(
            "WG consumer group, 4 members, prefetch 256, commit per message", context, Members, messages, cancellationToken);
        results.Add(group);
        if (cancellationToken.IsCancellationRequested)
        {
            return;
        }

        var single = await RunGroupAsync(
            "WG consumer group, 1 member, prefetch 256, commit per message", context, 1, messages, cancellationToken);
        var ratio = single.MessagesPerSecond > 0 ? group.MessagesPerSecond / single.MessagesPerSecond : 0;
        results.Add(single with { Notes = single.Notes + Invariant($"; 4 members / 1 member = {ratio:0.00}") });
        if (cancellationToken.IsCancellationRequested)
        {
            return;
        }

        // Latency without a backlog: the producer paced as W3's, below what the group takes.
        var rate = context.Settings.FanOutRate;
        var paced = (long)(rate * context.Settings.FanOutDuration.TotalSeconds);
        results.Add(await RunGroupAsync(
            Invariant($"WG consumer group, 4 members, {rate:N0} msgs/s for {context.Settings.FanOutDuration.TotalSeconds:0} s, commit per message"),
            context, Members, paced, cancellationToken, rate));
    }

    /// <summary>
    /// <paramref name="members"/> new connections join the group on a fresh topic, then one more publishes
    /// <paramref name="expected"/> stamped messages while they read and commit.
    /// </summary>
    private async Task<WorkloadResult> RunGroupAsync(
        string name, BenchmarkContext context, int members, long expected, CancellationToken cancellationToken, int? rate = null)
    {
        var topic = context.NewTopicName(Id);
        await using var producer = await context.ConnectAsync(cancellationToken);
        await producer.CreateTopicAsync(topic, PublishWorkload.RetainedTopic, cancellationToken);

        var tally = new Tally(expected);
        using var stopReading = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var readers = new List<GroupReader>();
        try
        {
            for (var i = 0; i < members; i++)
            {
                var client = await context.ConnectAsync(cancellationToken);
                var reader = new GroupReader(client, (int)Math.Min(expected, int.MaxValue), tally);
                readers.Add(reader);
                await reader.SubscribeAsync(topic, cancellationToken);
            }

            foreach (var reader in readers)
            {
                reader.Start(stopReading.Token);
            }

            var before = ResourceSnapshot.Take();
            var publishing = rate is { } paced
                ? Task.Run(async () => ((await FanOutWorkload.PublishPacedAsync(producer, topic, paced, expected, cancellationToken)).Published, Stopwatch.GetTimestamp()), CancellationToken.None)
                : Task.Run(() => PublishStampedAsync(producer, topic, expected, cancellationToken), CancellationToken.None);

            // Done when every sequence arrived; a reader that ends first failed, and the time limit ends the wait too.
            var limit = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (cancellationToken.Register(() => limit.TrySetResult()))
            {
                List<Task> waitingFor = [tally.AllReceived, Task.WhenAny(readers.Select(reader => reader.Completion)), publishing, limit.Task];
                while (await Task.WhenAny(waitingFor) == publishing && publishing.IsCompletedSuccessfully)
                {
                    waitingFor.Remove(publishing);
                }
            }

            var usage = ResourceSnapshot.Take().Since(before);
            var completed = tally.AllReceived.IsCompleted;
            if (completed && !cancellationToken.IsCancellationRequested)
            {
                // Untimed: a repeat or a redelivery arriving just after the last message still counts against the run.
                await Task.Delay(QuietPeriod, CancellationToken.None);
            }

            await stopReading.CancelAsync();
            var (published, publishedAt) = await publishing;
            await Task.WhenAll(readers.Select(reader => reader.Completion)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            var failure = readers.Select(reader => reader.Completion.Exception?.GetBaseException()).FirstOrDefault(exception => exception is not null);

            var (missing, repeated) = tally.Count();
            var redelivered = readers.Sum(reader => reader.Redelivered);
            var latency = LatencyRecorder.Summarize(readers.Select(reader => reader.Latencies));
            var timedOut = !completed && cancellationToken.IsCancellationRequested;
            var correct = completed && failure is null && missing == 0 && repeated == 0 && redelivered == 0 && tally.OutOfRange == 0;
            var notes = Invariant($"latency is publish to delivery over {latency.Count:N0} deliveries; ");
            if (members > 1)
            {
                notes += "spread " + string.Join(" / ", readers.Select(reader => Invariant($"{reader.Received:N0}"))) + "; ";
            }

            notes += Invariant($"received {tally.Distinct:N0} of {expected:N0} (published {published:N0}, the last Ack at {Stopwatch.GetElapsedTime(before.Timestamp, publishedAt).TotalSeconds:0.00} s), ") +
                Invariant($"missing {missing:N0}, repeated {repeated:N0}, ") +
                Invariant($"DeliveryCount > 1: {redelivered:N0}, outside 1..{expected:N0}: {tally.OutOfRange:N0}");
            if (failure is not null)
            {
                notes += $"; a member failed: {failure.GetType().Name}: {failure.Message}";
            }

            return new WorkloadResult
            {
                Name = name,
                Messages = tally.Distinct,
                Elapsed = completed ? Stopwatch.GetElapsedTime(before.Timestamp, tally.CompletedAt) : usage.Elapsed,
                Latency = latency,
                Usage = usage,
                Status = timedOut ? WorkloadStatus.TimedOut : correct ? WorkloadStatus.Completed : WorkloadStatus.Failed,
                Notes = notes,
            };
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
    /// Publishes <paramref name="count"/> messages keeping <see cref="PublishWorkload.Window"/> in flight, each payload
    /// stamped with its send time; returns how many were published and when the last Ack arrived.
    /// </summary>
    private static async Task<(long Published, long LastAckAt)> PublishStampedAsync(ZaichikClient producer, string topic, long count, CancellationToken cancellationToken)
    {
        var window = new PublishWindow(PublishWorkload.Window);

        // One payload buffer per window slot: a payload must not change until its publish completes.
        var payloads = new byte[window.Capacity][];
        for (var i = 0; i < payloads.Length; i++)
        {
            payloads[i] = BenchmarkContext.NewPayload();
        }

        for (long i = 0; i < count && !cancellationToken.IsCancellationRequested; i++)
        {
            var slot = await window.ReserveAsync();
            var payload = payloads[slot];
            BinaryPrimitives.WriteInt64LittleEndian(payload, Stopwatch.GetTimestamp());
            window.Issue(slot, producer.PublishAsync(topic, payload));
        }

        await window.DrainAsync();
        return (window.Issued, Stopwatch.GetTimestamp());
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>How often each sequence arrived, across the members; completes when every one of 1..expected did.</summary>
    private sealed class Tally(long expected)
    {
        private readonly int[] _deliveries = new int[expected];
        private readonly TaskCompletionSource _allReceived = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private long _distinct;
        private long _outOfRange;
        private long _completedAt;

        public Task AllReceived => _allReceived.Task;

        /// <summary>When the last sequence arrived, after its Commit was handed to the connection.</summary>
        public long CompletedAt => Volatile.Read(ref _completedAt);

        public long Distinct => Volatile.Read(ref _distinct);

        public long OutOfRange => Volatile.Read(ref _outOfRange);

        public void Received(long sequence)
        {
            if (sequence < 1 || sequence > _deliveries.Length)
            {
                Interlocked.Increment(ref _outOfRange);
                return;
            }

            if (Interlocked.Increment(ref _deliveries[sequence - 1]) == 1 && Interlocked.Increment(ref _distinct) == _deliveries.Length)
            {
                Volatile.Write(ref _completedAt, Stopwatch.GetTimestamp());
                _allReceived.TrySetResult();
            }
        }

        /// <summary>Sequences never received, and deliveries beyond each sequence's first; call once the readers stopped.</summary>
        public (long Missing, long Repeated) Count()
        {
            long missing = 0;
            long repeated = 0;
            foreach (var deliveries in _deliveries)
            {
                if (deliveries == 0)
                {
                    missing++;
                }
                else
                {
                    repeated += deliveries - 1;
                }
            }

            return (missing, repeated);
        }
    }

    /// <summary>One group member connection: records each delivery's latency, commits it at once, and tallies it.</summary>
    private sealed class GroupReader(ZaichikClient client, int capacity, Tally tally) : IAsyncDisposable
    {
        private ZaichikSubscription? _subscription;
        private long _received;

        public LatencyRecorder Latencies { get; } = new(capacity);

        public long Received => Volatile.Read(ref _received);

        /// <summary>Deliveries with a <see cref="ZaichikMessage.DeliveryCount"/> above 1.</summary>
        public long Redelivered { get; private set; }

        public Task Completion { get; private set; } = Task.CompletedTask;

        public async Task SubscribeAsync(string topic, CancellationToken cancellationToken) =>
            _subscription = await client.SubscribeAsync(
                topic, new SubscribeOptions { Group = GroupName, Prefetch = Prefetch }, cancellationToken);

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
            await foreach (var message in _subscription!.WithCancellation(stop))
            {
                var now = Stopwatch.GetTimestamp();
                Latencies.Record(now - BinaryPrimitives.ReadInt64LittleEndian(message.Payload.Span));
                if (message.DeliveryCount != 1)
                {
                    Redelivered++;
                }

                Volatile.Write(ref _received, _received + 1);
                await client.CommitAsync(message, CancellationToken.None);
                tally.Received(message.Sequence);
            }
        }
    }
}
