using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Zaichik.Tests.Hosting;

/// <summary>Builds generic hosts wired with AddZaichikClient for the hosting tests.</summary>
internal static class HostingFixture
{
    /// <summary>A host whose "Zaichik" section holds <paramref name="settings"/>; <paramref name="configure"/> adds the test's services.</summary>
    public static IHost BuildHost(IDictionary<string, string?> settings, Action<IServiceCollection>? configure = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, EnvironmentName = "Test" });
        builder.Configuration.AddInMemoryCollection(settings.Select(pair => KeyValuePair.Create("Zaichik:" + pair.Key, pair.Value)));
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddZaichikClient(builder.Configuration.GetSection("Zaichik"));
        configure?.Invoke(builder.Services);
        return builder.Build();
    }

    /// <summary>Settings for a broker on 127.0.0.1:<paramref name="port"/> that reconnects quickly.</summary>
    public static Dictionary<string, string?> Broker(int port) => new()
    {
        ["Host"] = "127.0.0.1",
        ["Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["ConnectTimeout"] = "00:00:02",
        ["RequestTimeout"] = "00:00:10",
        ["Reconnect:MinDelay"] = "00:00:00.050",
        ["Reconnect:MaxDelay"] = "00:00:00.500",
    };

    /// <summary>A loopback port that nothing listens on (it was free a moment ago).</summary>
    public static int UnusedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Stops and disposes the host the way a real app's shutdown does.</summary>
    public static async Task StopAndDisposeAsync(this IHost host)
    {
        await host.StopAsync(CancellationToken.None);
        if (host is IAsyncDisposable asyncDisposable)
        {
            await asyncDisposable.DisposeAsync();
        }
        else
        {
            host.Dispose();
        }
    }
}
