// Echo: subscribe to a fresh topic, publish "Hello, Zaichik!" to it and receive that very message back.
// Run a server first (dotnet run --project Zaichik.Server), then: dotnet run --project Zaichik.Examples/Echo
// HOST and PORT choose the server (default 127.0.0.1:8889). Exits 0 when the message came back, 1 otherwise.
using Zaichik.Client;
using Zaichik.Examples.Echo;
using Zaichik.Protocol;

var host = Environment.GetEnvironmentVariable("HOST") is { Length: > 0 } hostVariable ? hostVariable : "127.0.0.1";
var port = int.TryParse(Environment.GetEnvironmentVariable("PORT"), out var portVariable) ? portVariable : 8889;
return await EchoExample.RunAsync(host, port, Console.Out, Console.Error, CancellationToken.None);

namespace Zaichik.Examples.Echo
{
    /// <summary>The echo flow, callable from tests.</summary>
    public static class EchoExample
    {
        private static readonly TimeSpan ReceiveTimeout = TimeSpan.FromSeconds(10);

        /// <summary>Runs the example, writing progress and failures to <paramref name="output"/>. Returns the exit code.</summary>
        public static Task<int> RunAsync(string host, int port, TextWriter output, CancellationToken cancellationToken) =>
            RunAsync(host, port, output, output, cancellationToken);

        /// <summary>Runs the example, writing progress to <paramref name="output"/> and failures to <paramref name="error"/>. Returns the exit code.</summary>
        public static async Task<int> RunAsync(string host, int port, TextWriter output, TextWriter error, CancellationToken cancellationToken)
        {
            const string Greeting = "Hello, Zaichik!";
            var topic = $"hello-{Guid.NewGuid():N}"[..18];
            try
            {
                output.WriteLine($"Connecting to Zaichik at {host}:{port}");
                await using var client = await ConnectAsync(host, port, error, cancellationToken);
                if (client is null)
                {
                    return 1;
                }

                await client.CreateTopicAsync(topic, TopicOptions.Default, cancellationToken);
                await using var subscription = await client.SubscribeAsync(topic, new SubscribeOptions { From = StartPosition.Latest }, cancellationToken);
                output.WriteLine($"Subscribed to {topic}");

                var published = await client.PublishAsync(topic, Greeting, cancellationToken: cancellationToken);
                output.WriteLine($"Published \"{Greeting}\" at sequence {published.Sequence}");

                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(ReceiveTimeout);
                await foreach (var message in subscription.WithCancellation(timeout.Token))
                {
                    output.WriteLine($"Received \"{message.PayloadText}\" from {message.Topic} at sequence {message.Sequence}");
                    await client.CommitAsync(message, cancellationToken);
                    if (message.PayloadText != Greeting)
                    {
                        error.WriteLine($"Expected \"{Greeting}\" but received \"{message.PayloadText}\"");
                        return 1;
                    }

                    output.WriteLine("Committed. Echo works.");
                    return 0;
                }

                error.WriteLine($"The published message did not come back within {ReceiveTimeout.TotalSeconds:0} s");
                return 1;
            }
            catch (ZaichikException e)
            {
                error.WriteLine($"Echo failed: {e.Message}");
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
