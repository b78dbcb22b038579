using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Zaichik.Client;

namespace Zaichik.Examples.Worker;

/// <summary>The worker flow, callable from tests.</summary>
public static class WorkerExample
{
    private const int Orders = 3;
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Runs the example, writing progress and failures to <paramref name="output"/>. Returns the exit code.</summary>
    public static Task<int> RunAsync(string host, int port, TextWriter output, CancellationToken cancellationToken) =>
        RunAsync(host, port, output, output, cancellationToken);

    /// <summary>Runs the example, writing progress to <paramref name="output"/> and failures to <paramref name="error"/>. Returns the exit code.</summary>
    public static async Task<int> RunAsync(string host, int port, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var topic = $"orders-{Guid.NewGuid():N}"[..19];
        var ledger = new OrderLedger(topic, Orders, output);

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Zaichik:Host"] = host,
            ["Zaichik:Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        builder.Services.AddZaichikClient(builder.Configuration.GetSection("Zaichik"));
        builder.Services.AddHealthChecks().AddZaichikHealthCheck();
        builder.Services.AddSingleton(ledger);
        builder.Services.AddHostedService<OrderConsumer>();

        using var app = builder.Build();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(ProcessTimeout);
        output.WriteLine($"Connecting to Zaichik at {host}:{port}");
        var client = app.Services.GetRequiredService<ZaichikClient>();
        try
        {
            // Before the host starts, so the consumer's first subscription finds the topic. Retained, so the orders
            // published before the consumer's subscription is acknowledged still reach it.
            await client.CreateTopicAsync(topic, new TopicOptions { RetentionTtl = TimeSpan.FromMinutes(10) }, deadline.Token);
        }
        catch (Exception e) when (e is ZaichikException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            error.WriteLine($"Zaichik server is not reachable at {host}:{port}; start it with: dotnet run --project Zaichik.Server");
            error.WriteLine($"  ({e.Message})");
            return 1;
        }

        await app.StartAsync(cancellationToken);
        try
        {
            var health = await app.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(cancellationToken);
            output.WriteLine($"Health: {health.Status} ({health.Entries["zaichik"].Description})");

            for (var i = 1; i <= Orders; i++)
            {
                var order = new OrderPlaced($"order-{i}", 10m * i);
                var published = await client.PublishAsync(topic, order, key: order.OrderId, cancellationToken: deadline.Token);
                output.WriteLine($"Published {order.OrderId} at sequence {published.Sequence}");
            }

            await ledger.Done.WaitAsync(deadline.Token);
            output.WriteLine($"All {Orders} orders processed and committed.");
            return 0;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            error.WriteLine($"Only {ledger.Processed.Count} of {Orders} orders were processed within {ProcessTimeout.TotalSeconds:0} s");
            return 1;
        }
        catch (ZaichikException e)
        {
            error.WriteLine($"Worker failed: {e.Message}");
            return 1;
        }
        finally
        {
            await app.StopAsync(CancellationToken.None);
        }
    }
}
