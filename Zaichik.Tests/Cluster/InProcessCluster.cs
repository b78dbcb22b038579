using Microsoft.Extensions.DependencyInjection;
using Zaichik.Server.Cluster;
using Zaichik.Server.Hosting;
using Zaichik.Server.Topics;
using Microsoft.Extensions.Logging;
using Zaichik.Tests.Processes;

namespace Zaichik.Tests.Cluster;

/// <summary>Three brokers in this process forming a cluster on loopback, each with its own temporary data folder.</summary>
internal sealed class InProcessCluster : IAsyncDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "zaichik-cluster-" + Guid.NewGuid().ToString("N"));
    private readonly ZaichikServer?[] _servers;
    private readonly ZaichikServerOptions[] _options;
    private readonly EndToEnd.CapturingLoggerProvider[] _logs;

    private InProcessCluster(int nodes, Func<int, ClusterOptions, ClusterOptions>? configure, bool admin, Zaichik.Server.Storage.StorageOptions? storage)
    {
        var raftPorts = Enumerable.Range(0, nodes).Select(_ => BrokerProcess.FreePort()).ToArray();
        var peers = string.Join(',', raftPorts.Select((port, i) => $"n{i + 1}=127.0.0.1:{port}"));
        _servers = new ZaichikServer?[nodes];
        _logs = Enumerable.Range(0, nodes).Select(_ => new EndToEnd.CapturingLoggerProvider()).ToArray();
        RaftPorts = raftPorts;
        configure ??= (_, options) => options;
        _options = Enumerable.Range(0, nodes).Select(i => new ZaichikServerOptions
        {
            Host = "127.0.0.1",
            Port = 0,
            DataPath = Path.Combine(_root, $"n{i + 1}"),
            ShutdownTimeout = TimeSpan.FromSeconds(5),
            Storage = storage ?? new Zaichik.Server.Storage.StorageOptions(),
            Admin = new AdminOptions { Url = admin ? "http://127.0.0.1:0" : "" },
            Listeners = new ListenerOptions { WebSocket = new WebSocketListenerOptions { Url = "http://127.0.0.1:0/ws" } },
            Cluster = configure(i, new ClusterOptions
            {
                NodeId = $"n{i + 1}",
                Peers = peers,
                ElectionTimeoutMin = TimeSpan.FromMilliseconds(600),
                ElectionTimeoutMax = TimeSpan.FromMilliseconds(1200),
            }),
        }).ToArray();
    }

    /// <summary>Each node's Raft listener port on 127.0.0.1.</summary>
    public IReadOnlyList<int> RaftPorts { get; }

    public int Count => _servers.Length;

    public ZaichikServer Server(int node) => _servers[node] ?? throw new InvalidOperationException($"node {node} is stopped");

    public bool IsRunning(int node) => _servers[node] is not null;

    internal ClusterNode Node(int node) => Server(node).Services.GetRequiredService<ClusterNode>();

    /// <summary>The node's admin API as bound (with <c>admin: true</c>).</summary>
    public Uri AdminUrl(int node) => new(Server(node).Services.GetRequiredService<BoundListeners>().AdminUrl!);

    /// <summary>The node's WebSocket listener as bound.</summary>
    public Uri WebSocketUrl(int node) => new(Server(node).Services.GetRequiredService<BoundListeners>().WebSocketUrl!);

    internal TopicRegistry Registry(int node) => Server(node).Services.GetRequiredService<TopicRegistry>();

    internal Zaichik.Server.State.BrokerState State(int node) => Server(node).Services.GetRequiredService<Zaichik.Server.State.BrokerState>();

    /// <summary>The node's data folder (its Raft log is under <c>cluster/raft</c>, its snapshots under <c>cluster/snapshots</c>).</summary>
    public string DataPath(int node) => _options[node].DataPath;

    /// <summary>
    /// Starts the nodes; <paramref name="configure"/> may change each node's cluster options (node index, options);
    /// <paramref name="admin"/> turns each node's admin API on (on a free port); <paramref name="storage"/> sizes every node's topic logs.
    /// </summary>
    public static async Task<InProcessCluster> StartAsync(
        int nodes = 3, Func<int, ClusterOptions, ClusterOptions>? configure = null, bool admin = false, Zaichik.Server.Storage.StorageOptions? storage = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            var cluster = new InProcessCluster(nodes, configure, admin, storage);
            try
            {
                await Task.WhenAll(Enumerable.Range(0, nodes).Select(cluster.StartNodeAsync));
                return cluster;
            }
            catch (Exception failure) when (attempt < 3 && IsPortTaken(failure))
            {
                // A Raft port was free when picked and taken before its node bound it: again, with other ports.
                await cluster.DisposeAsync();
            }
            catch
            {
                await cluster.DisposeAsync();
                throw;
            }
        }
    }

    private static bool IsPortTaken(Exception? failure)
    {
        for (; failure is not null; failure = failure.InnerException)
        {
            if (failure is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.AddressAlreadyInUse })
            {
                return true;
            }
        }

        return false;
    }

    public async Task StartNodeAsync(int node) =>
        _servers[node] = await ZaichikServer.StartAsync(_options[node], configureLogging: logging => logging.AddProvider(_logs[node]));

    /// <summary>Every running node's view of the cluster, for a failure message.</summary>
    public string Describe() => string.Join(Environment.NewLine, Enumerable.Range(0, Count).Where(IsRunning).Select(i => System.Text.Json.JsonSerializer.Serialize(Node(i).Describe())));

    /// <summary>Every node's log lines, for a failure message.</summary>
    public string Logs() => string.Join(Environment.NewLine, _logs.Select((logs, i) => $"--- n{i + 1}:{Environment.NewLine}{string.Join(Environment.NewLine, logs.Lines)}"));

    public async Task StopNodeAsync(int node)
    {
        if (_servers[node] is { } server)
        {
            _servers[node] = null;
            await server.DisposeAsync();
        }
    }

    /// <summary>The index of the node that leads and serves, once one does.</summary>
    public async Task<int> WaitForLeaderAsync(TimeSpan timeout, int? except = null)
    {
        using var deadline = new CancellationTokenSource(timeout);
        while (true)
        {
            for (var i = 0; i < _servers.Length; i++)
            {
                if (i != except && _servers[i] is not null && Node(i).IsLeader)
                {
                    return i;
                }
            }

            if (deadline.IsCancellationRequested)
            {
                throw new TimeoutException($"no node led and served within {timeout}{Environment.NewLine}{Describe()}{Environment.NewLine}{Logs()}");
            }

            await Task.Delay(20, CancellationToken.None);
        }
    }

    /// <summary>Waits until <paramref name="node"/> knows where the leader takes clients (it asks the leader once).</summary>
    public async Task WaitForLeaderAddressAsync(int node, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        while (Node(node).Leader is null)
        {
            await Task.Delay(20, deadline.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = 0; i < _servers.Length; i++)
        {
            await StopNodeAsync(i);
        }

        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
