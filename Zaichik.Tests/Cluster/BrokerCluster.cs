using System.Net.Http.Json;
using System.Text.Json;
using Zaichik.Tests.Processes;

namespace Zaichik.Tests.Cluster;

/// <summary>Three broker processes forming a cluster on loopback, each with its admin API on, that a test may kill -9.</summary>
internal sealed class BrokerCluster : IAsyncDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "zaichik-brokers-" + Guid.NewGuid().ToString("N"));
    private readonly int[] _clientPorts;
    private readonly int[] _adminPorts;
    private readonly string _peers;
    private readonly BrokerProcess?[] _brokers;
    private readonly long _snapshotEntries;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };

    private BrokerCluster(int nodes, long snapshotEntries)
    {
        _snapshotEntries = snapshotEntries;
        _clientPorts = Enumerable.Range(0, nodes).Select(_ => BrokerProcess.FreePort()).ToArray();
        _adminPorts = Enumerable.Range(0, nodes).Select(_ => BrokerProcess.FreePort()).ToArray();
        _peers = string.Join(',', Enumerable.Range(0, nodes).Select(i => $"n{i + 1}=127.0.0.1:{BrokerProcess.FreePort()}"));
        _brokers = new BrokerProcess?[nodes];
    }

    public int Count => _brokers.Length;

    /// <summary>Every node's client endpoint, as <c>host:port</c>.</summary>
    public IReadOnlyList<string> Endpoints => _clientPorts.Select(port => $"127.0.0.1:{port}").ToArray();

    public bool IsRunning(int node) => _brokers[node] is { HasExited: false };

    /// <summary>Starts the nodes; <paramref name="snapshotEntries"/> above 0 has them snapshot that often, in 64 KiB Raft log files.</summary>
    public static async Task<BrokerCluster> StartAsync(int nodes = 3, long snapshotEntries = 0)
    {
        var cluster = new BrokerCluster(nodes, snapshotEntries);
        try
        {
            await Task.WhenAll(Enumerable.Range(0, nodes).Select(cluster.StartNodeAsync));
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }

        return cluster;
    }

    public async Task StartNodeAsync(int node) =>
        _brokers[node] = await BrokerProcess.StartAsync(
            Path.Combine(_root, $"n{node + 1}"),
            _clientPorts[node],
            null,
            "--node", $"n{node + 1}",
            "--peers", _peers,
            "--admin", $"http://127.0.0.1:{_adminPorts[node]}",
            "--Zaichik:Admin:MaxPeekMessages", "10000",
            "--Zaichik:Cluster:ElectionTimeoutMin", "00:00:01",
            "--Zaichik:Cluster:ElectionTimeoutMax", "00:00:02",
            "--Zaichik:Cluster:SnapshotEntries", _snapshotEntries.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--Zaichik:Cluster:LogChunkBytes", _snapshotEntries > 0 ? "65536" : "4194304");

    /// <summary>kill -9: no shutdown, nothing flushed that was not already.</summary>
    public async Task KillAsync(int node)
    {
        if (_brokers[node] is { } broker)
        {
            _brokers[node] = null;
            await broker.KillAsync();
            await broker.DisposeAsync();
        }
    }

    /// <summary>What <c>GET /api/cluster</c> of <paramref name="node"/> says, or null when it does not answer.</summary>
    public async Task<JsonElement?> DescribeAsync(int node)
    {
        try
        {
            return await _http.GetFromJsonAsync<JsonElement>($"http://127.0.0.1:{_adminPorts[node]}/api/cluster?scope=local");
        }
        catch (Exception failure) when (failure is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    /// <summary>What <c>GET /metrics</c> of <paramref name="node"/> answers (Prometheus text).</summary>
    public Task<string> MetricsAsync(int node) => _http.GetStringAsync($"http://127.0.0.1:{_adminPorts[node]}/metrics");

    /// <summary>The running node that leads and serves, once one does.</summary>
    public async Task<int> WaitForLeaderAsync(TimeSpan timeout, int? except = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            for (var i = 0; i < Count; i++)
            {
                if (i != except && IsRunning(i) && await DescribeAsync(i) is { } view && view.GetProperty("role").GetString() == "Leader")
                {
                    return i;
                }
            }

            await Task.Delay(25);
        }

        throw new TimeoutException($"no node led within {timeout}");
    }

    /// <summary>Every message <paramref name="node"/> stores in <paramref name="topic"/>, as its admin API peeks them.</summary>
    public async Task<IReadOnlyList<StoredMessage>> ReadAsync(int node, string topic)
    {
        var messages = new List<StoredMessage>();
        long? from = null;
        do
        {
            var page = await _http.GetFromJsonAsync<JsonElement>(
                $"http://127.0.0.1:{_adminPorts[node]}/api/topics/{topic}/messages?limit=10000{(from is { } start ? $"&from={start}" : string.Empty)}");
            foreach (var message in page.GetProperty("messages").EnumerateArray())
            {
                messages.Add(new StoredMessage(
                    message.GetProperty("sequence").GetInt64(),
                    message.GetProperty("timestamp").GetDateTimeOffset(),
                    message.GetProperty("key").GetString(),
                    message.GetProperty("payload").GetString()!));
            }

            from = page.TryGetProperty("next", out var next) && next.ValueKind == JsonValueKind.Number ? next.GetInt64() : null;
        }
        while (from is not null);
        return messages;
    }

    /// <summary>Waits until <paramref name="node"/> stores <paramref name="count"/> messages of <paramref name="topic"/>, then reads them.</summary>
    public async Task<IReadOnlyList<StoredMessage>> ReadWhenCaughtUpAsync(int node, string topic, int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        IReadOnlyList<StoredMessage> messages = [];
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                messages = await ReadAsync(node, topic);
                if (messages.Count >= count)
                {
                    return messages;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet, or the topic is not there yet.
            }

            await Task.Delay(100);
        }

        return messages;
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = 0; i < Count; i++)
        {
            await KillAsync(i);
        }

        _http.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>One stored message as the admin API shows it.</summary>
internal sealed record StoredMessage(long Sequence, DateTimeOffset Timestamp, string? Key, string Payload);
