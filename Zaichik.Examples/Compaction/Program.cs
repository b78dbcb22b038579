// Compaction: publish 100 messages with key "key1" and one with key "key2" to a topic with a 10 s compaction
// window. The server keeps the first message of each key and acknowledges the other 99 as duplicates, so a
// subscriber reading the retained messages afterwards receives exactly two.
// Run a server first (dotnet run --project Zaichik.Server), then: dotnet run --project Zaichik.Examples/Compaction
// HOST and PORT choose the server (default 127.0.0.1:8889). Exits 0 when exactly two messages arrive, 1 otherwise.
using Zaichik.Client;
using Zaichik.Examples.Compaction;
using Zaichik.Protocol;

var host = Environment.GetEnvironmentVariable("HOST") is { Length: > 0 } hostVariable ? hostVariable : "127.0.0.1";
var port = int.TryParse(Environment.GetEnvironmentVariable("PORT"), out var portVariable) ? portVariable : 8889;
return await CompactionExample.RunAsync(host, port, Console.Out, Console.Error, CancellationToken.None);

namespace Zaichik.Examples.Compaction
{
    /// <summary>The compaction flow, callable from tests.</summary>
    public static class CompactionExample
    {
        private const int Repeats = 100;
        private static readonly TimeSpan ReceiveTimeout = TimeSpan.FromSeconds(10);

        // Long enough for a third message, if the server wrongly kept one, to arrive after the two expected.
        private static readonly TimeSpan GracePeriod = TimeSpan.FromMilliseconds(500);

        /// <summary>Runs the example, writing progress and failures to <paramref name="output"/>. Returns the exit code.</summary>
        public static Task<int> RunAsync(string host, int port, TextWriter output, CancellationToken cancellationToken) =>
            RunAsync(host, port, output, output, cancellationToken);

        /// <summary>Runs the example, writing progress to <paramref name="output"/> and failures to <paramref name="error"/>. Returns the exit code.</summary>
        public static async Task<int> RunAsync(string host, int port, TextWriter output, TextWriter error, CancellationToken cancellationToken)
        {
            var topic = $"hello-compacted-{Guid.NewGuid():N}"[..28];
            try
            {
                output.WriteLine($"Connecting to Zaichik at {host}:{port}");
                await using var client = await ConnectAsync(host, port, error, cancellationToken);
                if (client is null)
                {
                    return 1;
                }

                // Retention lets the subscriber, which starts only after publishing, read what compaction kept.
                var options = new TopicOptions { CompactionWindow = TimeSpan.FromSeconds(10), RetentionTtl = TimeSpan.FromSeconds(60) };
                await client.CreateTopicAsync(topic, options, cancellationToken);
                output.WriteLine($"Created {topic}: compaction window 10 s, retention 60 s");

                // All 100 are in flight at once; the server answers them in the order they were sent.
                var publishes = Enumerable.Range(1, Repeats)
                    .Select(i => client.PublishAsync(topic, $"key1 message {i}", "key1", cancellationToken).AsTask())
                    .ToList();
                var results = await Task.WhenAll(publishes);
                var last = await client.PublishAsync(topic, "key2 message", "key2", cancellationToken);
                var duplicates = results.Count(r => r.Duplicate) + (last.Duplicate ? 1 : 0);
                output.WriteLine($"Published {Repeats} messages with key1 and 1 with key2: {duplicates} acknowledged as duplicates (expected {Repeats - 1})");

                await using var subscription = await client.SubscribeAsync(
                    topic, new SubscribeOptions { From = StartPosition.Retained, Prefetch = 100 }, cancellationToken);
                output.WriteLine("Subscribed from the retained messages");

                var received = new List<ZaichikMessage>();
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(ReceiveTimeout);
                await foreach (var message in subscription.WithCancellation(timeout.Token))
                {
                    received.Add(message);
                    output.WriteLine($"Received key={message.KeyText} \"{message.PayloadText}\" at sequence {message.Sequence}");
                    if (received.Count == 2)
                    {
                        output.WriteLine($"Waiting {GracePeriod.TotalMilliseconds:0} ms to make sure no third message arrives");
                        timeout.CancelAfter(GracePeriod);
                    }
                }

                await client.CommitAsync(cancellationToken);
                if (received.Count != 2 || duplicates != Repeats - 1)
                {
                    error.WriteLine($"Expected 2 messages and {Repeats - 1} duplicates; got {received.Count} messages and {duplicates} duplicates");
                    return 1;
                }

                output.WriteLine("Compaction works: one message per key within the window.");
                return 0;
            }
            catch (ZaichikException e)
            {
                error.WriteLine($"Compaction failed: {e.Message}");
                return 1;
            }
        }

        private static async Task<ZaichikClient?> ConnectAsync(string host, int port, TextWriter error, CancellationToken cancellationToken)
        {
            try
            {
                return await ZaichikClient.ConnectAsync(host, port, cancellationToken: cancellationToken);
            }
            catch (ZaichikConnectionException e)
            {
                error.WriteLine($"Zaichik server is not reachable at {host}:{port}; start it with: dotnet run --project Zaichik.Server");
                error.WriteLine($"  ({e.Message})");
                return null;
            }
        }
    }
}
