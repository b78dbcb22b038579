// Retention: one client publishes to a topic that keeps messages for 10 s and disconnects; a second client
// connects afterwards, subscribes from the retained messages and still receives it.
// Run a server first (dotnet run --project Zaichik.Server), then: dotnet run --project Zaichik.Examples/Retention
// HOST and PORT choose the server (default 127.0.0.1:8889). Exits 0 when the late subscriber got the message, 1 otherwise.
using Zaichik.Client;
using Zaichik.Examples.Retention;
using Zaichik.Protocol;

var host = Environment.GetEnvironmentVariable("HOST") is { Length: > 0 } hostVariable ? hostVariable : "127.0.0.1";
var port = int.TryParse(Environment.GetEnvironmentVariable("PORT"), out var portVariable) ? portVariable : 8889;
return await RetentionExample.RunAsync(host, port, Console.Out, Console.Error, CancellationToken.None);

namespace Zaichik.Examples.Retention
{
    /// <summary>The retention flow, callable from tests.</summary>
    public static class RetentionExample
    {
        private static readonly TimeSpan ReceiveTimeout = TimeSpan.FromSeconds(10);

        /// <summary>Runs the example, writing progress and failures to <paramref name="output"/>. Returns the exit code.</summary>
        public static Task<int> RunAsync(string host, int port, TextWriter output, CancellationToken cancellationToken) =>
            RunAsync(host, port, output, output, cancellationToken);

        /// <summary>Runs the example, writing progress to <paramref name="output"/> and failures to <paramref name="error"/>. Returns the exit code.</summary>
        public static async Task<int> RunAsync(string host, int port, TextWriter output, TextWriter error, CancellationToken cancellationToken)
        {
            var topic = $"hello-retained-{Guid.NewGuid():N}"[..27];
            var text = $"Retained hello sent at {DateTimeOffset.UtcNow:HH:mm:ss.fff}";
            try
            {
                output.WriteLine($"Publisher: connecting to Zaichik at {host}:{port}");
                await using (var publisher = await ConnectAsync(host, port, error, cancellationToken))
                {
                    if (publisher is null)
                    {
                        return 1;
                    }

                    await publisher.CreateTopicAsync(topic, new TopicOptions { RetentionTtl = TimeSpan.FromSeconds(10) }, cancellationToken);
                    output.WriteLine($"Publisher: created {topic}, retaining messages for 10 s");
                    var published = await publisher.PublishAsync(topic, text, cancellationToken: cancellationToken);
                    output.WriteLine($"Publisher: published \"{text}\" at sequence {published.Sequence}, disconnecting");
                }

                output.WriteLine("Subscriber: connecting");
                await using var subscriber = await ConnectAsync(host, port, error, cancellationToken);
                if (subscriber is null)
                {
                    return 1;
                }
                await using var subscription = await subscriber.SubscribeAsync(topic, new SubscribeOptions { From = StartPosition.Retained }, cancellationToken);
                output.WriteLine($"Subscriber: subscribed to {topic} from the retained messages");

                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(ReceiveTimeout);
                await foreach (var message in subscription.WithCancellation(timeout.Token))
                {
                    output.WriteLine($"Subscriber: received \"{message.PayloadText}\" (sequence {message.Sequence}, published {message.Timestamp:HH:mm:ss.fff})");
                    await subscriber.CommitAsync(message, cancellationToken);
                    if (message.PayloadText != text)
                    {
                        error.WriteLine($"Expected \"{text}\" but received \"{message.PayloadText}\"");
                        return 1;
                    }

                    output.WriteLine("Retention works: the message outlived its publisher's connection.");
                    return 0;
                }

                error.WriteLine($"The retained message did not arrive within {ReceiveTimeout.TotalSeconds:0} s");
                return 1;
            }
            catch (ZaichikException e)
            {
                error.WriteLine($"Retention failed: {e.Message}");
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
