using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Zaichik.Client;
using Zaichik.Server.Hosting;
using Zaichik.Server.Transports;
using Zaichik.Server.Topics;

namespace Zaichik.Tests.EndToEnd;

/// <summary>A real broker in-process on 127.0.0.1:0 with its own temporary data folder.</summary>
internal sealed class TestServer : IAsyncDisposable
{
    private readonly List<ZaichikClient> _clients = [];
    private readonly TimeProvider? _time;
    private readonly bool _ownsDataPath;
    private int _stoppedPort;

    private TestServer(ZaichikServer server, ZaichikServerOptions options, TimeProvider? time, bool ownsDataPath)
    {
        Server = server;
        Options = options;
        _time = time;
        _ownsDataPath = ownsDataPath;
    }

    public ZaichikServer Server { get; private set; }

    public ZaichikServerOptions Options { get; }

    public int Port => Server.Port;

    public string DataPath => Options.DataPath;

    internal TopicRegistry Registry => Server.Services.GetRequiredService<TopicRegistry>();

    internal TopicMaintenance Maintenance => Server.Services.GetRequiredService<TopicMaintenance>();

    internal ZaichikConnectionHandler Connections => Server.Services.GetRequiredService<ZaichikConnectionHandler>();

    /// <summary>The broker state model, as the admin API reads it.</summary>
    internal Zaichik.Server.State.BrokerState State => Server.Services.GetRequiredService<Zaichik.Server.State.BrokerState>();

    public static async Task<TestServer> StartAsync(
        Func<ZaichikServerOptions, ZaichikServerOptions>? configure = null, TimeProvider? time = null, string? dataPath = null, ILoggerProvider? logs = null)
    {
        var options = new ZaichikServerOptions
        {
            Host = "127.0.0.1",
            Port = 0,
            DataPath = dataPath ?? Path.Combine(Path.GetTempPath(), "zaichik-e2e-" + Guid.NewGuid().ToString("N")),
            ShutdownTimeout = TimeSpan.FromSeconds(5),

            // Off unless a test asks for it (Admin with Url http://127.0.0.1:0): most tests need no HTTP listener.
            Admin = new AdminOptions { Url = "" },
        };
        if (time is not null)
        {
            // Tests on a fake clock jump minutes or days ahead to expire messages; idle connections would be closed
            // by those jumps. Tests of the timeouts themselves set them again in configure.
            options = options with { IdleTimeout = TimeSpan.Zero, HandshakeTimeout = TimeSpan.Zero };
        }

        options = configure?.Invoke(options) ?? options;
        var server = await ZaichikServer.StartAsync(options, time, logs is null ? null : logging => logging.AddProvider(logs));
        return new TestServer(server, options, time, ownsDataPath: dataPath is null);
    }

    public async Task<ZaichikClient> ConnectAsync()
    {
        var client = await ZaichikClient.ConnectAsync("127.0.0.1", Port);
        _clients.Add(client);
        return client;
    }

    /// <summary>Stops the broker cleanly and starts a new one on the same data folder.</summary>
    public async Task RestartAsync()
    {
        await DisposeClientsAsync();
        await Server.DisposeAsync();
        Server = await ZaichikServer.StartAsync(Options, _time);
    }

    /// <summary>Stops the broker cleanly, leaving connected clients to notice (and reconnect).</summary>
    public async Task StopAsync()
    {
        _stoppedPort = Port;
        await Server.DisposeAsync();
    }

    /// <summary>Starts the broker stopped by <see cref="StopAsync"/> again, on the same data folder and the same port.</summary>
    public async Task StartAgainAsync()
    {
        Server = await ZaichikServer.StartAsync(Options with { Port = _stoppedPort }, _time);
    }

    /// <summary>Waits, polling, until <paramref name="condition"/> holds; fails after 10 s.</summary>
    public static async Task EventuallyAsync(Func<bool> condition, string because)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new ShouldAssertException($"condition not met within 10 s: {because}");
            }

            await Task.Delay(10);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await DisposeClientsAsync();
        await Server.DisposeAsync();
        if (_ownsDataPath)
        {
            try
            {
                Directory.Delete(DataPath, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private async Task DisposeClientsAsync()
    {
        foreach (var client in _clients)
        {
            await client.DisposeAsync();
        }

        _clients.Clear();
    }
}
