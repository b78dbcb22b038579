using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Benchmarks.Workloads;

/// <summary>
/// Fan-out to many subscribers of one topic (only when named): the broker runs as its own process (so its RSS and CPU
/// are its own), <c>--subscribers</c> connections subscribe to one topic from its tail without acks, then one producer
/// publishes <c>--fanout-messages</c> messages of 100 bytes with 100 in flight, each carrying its send time. Every
/// subscriber must receive every message once, in order. The subscribers are raw protocol readers (a socket, a pipe and
/// the frame reader), so the benchmark process stays small beside the broker on shared cores.
/// </summary>
internal sealed class WideFanOutWorkload : IWorkload
{
    private const int ProducerWindow = 100;

    /// <summary>Subscribe requests in flight while connecting.</summary>
    private const int ConnectWindow = 200;

    private static readonly TimeSpan DeliveryTimeout = TimeSpan.FromSeconds(120);

    public string Id => "fanout";

    public string Title => "Wide fan-out";

    public async Task RunAsync(BenchmarkContext context, ResultTable results, CancellationToken cancellationToken)
    {
        var subscribers = context.Settings.Subscribers;
        var messages = context.Settings.FanOutMessages;
        var dataPath = Path.Combine(Path.GetTempPath(), $"zaichik-fanout-{Guid.NewGuid():N}");
        var settings = new Dictionary<string, string> { ["MaxConnections"] = (subscribers + 100).ToString(CultureInfo.InvariantCulture) };
        var (broker, _) = await BrokerProcess.StartAsync(dataPath, cancellationToken, settings);
        var readers = new List<RawSubscriber>(subscribers);
        try
        {
            await using var producer = await ZaichikClient.ConnectAsync(new ZaichikClientOptions { Host = "127.0.0.1", Port = broker.Port }, cancellationToken);
            const string topic = "fanout";
            await producer.CreateTopicAsync(topic, new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) }, cancellationToken);
            var idleRss = broker.RssMiB();

            var connecting = Stopwatch.StartNew();
            using (var window = new SemaphoreSlim(ConnectWindow))
            {
                var connects = new List<Task>();
                for (var i = 0; i < subscribers && !cancellationToken.IsCancellationRequested; i++)
                {
                    await window.WaitAsync(cancellationToken);
                    var reader = new RawSubscriber(messages);
                    readers.Add(reader);
                    connects.Add(Connect(reader));
                }

                await Task.WhenAll(connects);

                async Task Connect(RawSubscriber reader)
                {
                    try
                    {
                        await reader.SubscribeAsync(broker.Port, topic, cancellationToken);
                    }
                    finally
                    {
                        window.Release();
                    }
                }
            }

            connecting.Stop();
            var subscribedRss = broker.RssMiB();
            var cpuBefore = broker.CpuTime();
            var started = Stopwatch.GetTimestamp();
            var payload = BenchmarkContext.NewPayload();
            var pending = new Queue<Task>();
            for (var i = 0; i < messages && !cancellationToken.IsCancellationRequested; i++)
            {
                if (pending.Count >= ProducerWindow)
                {
                    await pending.Dequeue();
                }

                var copy = payload.ToArray();
                BinaryPrimitives.WriteInt64LittleEndian(copy, Stopwatch.GetTimestamp());
                pending.Enqueue(producer.PublishAsync(topic, copy, cancellationToken: cancellationToken).AsTask());
            }

            await Task.WhenAll(pending);
            var published = Stopwatch.GetElapsedTime(started);
            using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                deadline.CancelAfter(DeliveryTimeout);
                try
                {
                    await Task.WhenAll(readers.Select(reader => reader.AllReceived.WaitAsync(deadline.Token)));
                }
                catch (OperationCanceledException)
                {
                }
            }

            var elapsed = Stopwatch.GetElapsedTime(started);
            var brokerCpu = broker.CpuTime() - cpuBefore;
            var delivered = readers.Sum(reader => reader.Received);
            var wrong = readers.Sum(reader => reader.OutOfOrder);
            var latency = LatencyRecorder.Summarize(readers.Select(reader => reader.Latencies));
            var expected = (long)subscribers * messages;
            results.Add(new WorkloadResult
            {
                Name = $"Fan-out to {subscribers:N0} subscribers, {messages:N0} messages",
                Messages = delivered,
                Elapsed = elapsed,
                Latency = latency,
                Status = delivered == expected && wrong == 0 ? WorkloadStatus.Completed : WorkloadStatus.Failed,
                Notes = string.Create(CultureInfo.InvariantCulture,
                    $"msgs/s counts deliveries; delivered {delivered:N0} of {expected:N0}, out of order {wrong:N0}; published in {published.TotalSeconds:0.00} s; " +
                    $"broker CPU {brokerCpu.TotalSeconds:0.0} s ({brokerCpu.TotalMilliseconds * 1000 / Math.Max(1, delivered):0.00} us per delivery); " +
                    $"{subscribers:N0} subscribed in {connecting.Elapsed.TotalSeconds:0.0} s; broker RSS {idleRss:0} MiB before, {subscribedRss:0} MiB subscribed " +
                    $"({(subscribedRss - idleRss) * 1024 / subscribers:0.0} KiB per subscriber), {broker.RssMiB():0} MiB after, peak {broker.PeakRssMiB():0} MiB"),
            });
        }
        finally
        {
            foreach (var reader in readers)
            {
                reader.Dispose();
            }

            await broker.StopAsync();
            try
            {
                Directory.Delete(dataPath, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>One subscriber connection speaking the protocol directly: Hello, Subscribe from the tail without acks, then Messages.</summary>
    private sealed class RawSubscriber(int expected) : IDisposable
    {
        private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        private readonly TaskCompletionSource _allReceived = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private long _received;
        private long _lastSequence;

        public LatencyRecorder Latencies { get; } = new(expected);

        public long Received => Volatile.Read(ref _received);

        public long OutOfOrder { get; private set; }

        public Task AllReceived => _allReceived.Task;

        public async Task SubscribeAsync(int port, string topic, CancellationToken cancellationToken)
        {
            await _socket.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
            var stream = new NetworkStream(_socket, ownsSocket: false);
            var output = new ArrayBufferWriter<byte>();
            FrameWriter.Write(output, new HelloFrame(ProtocolVersion.Current));
            FrameWriter.Write(output, new SubscribeFrame(1, topic, StartPosition.Latest, 1, AckPolicy: AckPolicy.None));
            await stream.WriteAsync(output.WrittenMemory, cancellationToken);
            var input = PipeReader.Create(stream);
            var frames = new FrameReader();
            var subscribed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _ = Task.Run(() => ReadAsync(input, frames, subscribed), CancellationToken.None);
            await subscribed.Task.WaitAsync(cancellationToken);
        }

        public void Dispose() => _socket.Dispose();

        private async Task ReadAsync(PipeReader input, FrameReader frames, TaskCompletionSource subscribed)
        {
            try
            {
                while (true)
                {
                    var result = await input.ReadAsync();
                    var buffer = result.Buffer;
                    var now = Stopwatch.GetTimestamp();
                    while (frames.TryRead(ref buffer, out var frame))
                    {
                        switch (frame.Type)
                        {
                            case FrameType.Ack:
                                subscribed.TrySetResult();
                                break;
                            case FrameType.Error:
                                var error = frames.ReadError(frame);
                                subscribed.TrySetException(new InvalidOperationException($"{error.Code}: {error.Text}"));
                                _allReceived.TrySetException(new InvalidOperationException($"{error.Code}: {error.Text}"));
                                return;
                            case FrameType.Message:
                                var message = frames.ReadMessage(frame);
                                if (message.Sequence <= _lastSequence)
                                {
                                    OutOfOrder++;
                                }

                                _lastSequence = message.Sequence;
                                Latencies.Record(now - BinaryPrimitives.ReadInt64LittleEndian(message.Payload.Span));
                                if (Interlocked.Increment(ref _received) == expected)
                                {
                                    _allReceived.TrySetResult();
                                }

                                break;
                        }
                    }

                    input.AdvanceTo(buffer.Start, buffer.End);
                    if (result.IsCompleted)
                    {
                        break;
                    }
                }
            }
            catch (Exception exception) when (exception is IOException or SocketException or ObjectDisposedException)
            {
            }
            finally
            {
                subscribed.TrySetException(new IOException("the connection closed before the Subscribe was answered"));
            }
        }
    }
}
