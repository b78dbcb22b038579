using System.Globalization;
using System.Net;

namespace Zaichik.Server.Cluster;

/// <summary>
/// Cluster mode, bound from <c>Zaichik:Cluster</c>. Without <see cref="NodeId"/> the broker is a single node and behaves
/// as it always has. With it, the nodes listed in <see cref="Peers"/> (fixed membership) run one Raft group
/// (DotNext.Net.Cluster, persistent write-ahead log): the leader orders and replicates every publish, topic creation and
/// durable consumer commit, each node applies them to its own topic logs, and requests to a node that does not lead are
/// answered with a Redirect frame naming the leader.
/// </summary>
public sealed record ClusterOptions
{
    /// <summary>This node's id, one of the ids in <see cref="Peers"/>. Empty (the default): cluster mode is off.</summary>
    public string NodeId { get; set; } = string.Empty;

    /// <summary>
    /// Every node of the cluster, this one included, as <c>id=host:port</c> separated by commas, where host:port is the
    /// node's Raft (replication) listener, e.g. <c>n1=10.0.0.1:7101,n2=10.0.0.2:7101,n3=10.0.0.3:7101</c>.
    /// </summary>
    public string Peers { get; set; } = string.Empty;

    /// <summary>
    /// Where clients reach this node's TCP listener (<c>host:port</c>), sent in Redirect frames when this node leads.
    /// Default: the broker's <c>Host:Port</c> as bound.
    /// </summary>
    public string? Advertise { get; set; }

    /// <summary>
    /// Where browsers reach this node's WebSocket listener (<c>ws://</c> or <c>wss://</c> URL), sent in Redirect frames to
    /// WebSocket clients. Default: the WebSocket listener's URL as bound, when it is on.
    /// </summary>
    public string? AdvertiseWebSocket { get; set; }

    /// <summary>
    /// Where this node's admin API is reached by the other nodes (an http:// or https:// URL), so that
    /// <c>GET /api/cluster</c> on any node can show every member's log position and lag. Default: the admin listener as bound.
    /// </summary>
    public string? AdvertiseAdmin { get; set; }

    /// <summary>How long <c>GET /api/cluster</c> waits for each other member's admin API. Default 2 s.</summary>
    public TimeSpan PeerAdminTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The shortest time a follower waits without hearing from a leader before it starts an election. Seconds, not the
    /// 150 ms of the Raft paper: on a busy 2-core machine a leader can stall for hundreds of milliseconds. Default 1.5 s.
    /// </summary>
    public TimeSpan ElectionTimeoutMin { get; set; } = TimeSpan.FromMilliseconds(1500);

    /// <summary>The longest such wait; each election picks a random timeout between the two. Default 3 s.</summary>
    public TimeSpan ElectionTimeoutMax { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>How long one replication request between nodes may take. Default 10 s.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a node waits to connect to another. Default 1 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Size of one file of the Raft log, in bytes (fixed once the log exists). Default 4 MiB: the library's default of
    /// 4 KiB made the log create and delete a file every few dozen messages.
    /// </summary>
    public int LogChunkBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// The publishes of one client read go into one Raft log entry (one replication round for all of them); a batch is
    /// handed over once it holds this many bytes. Default 1 MiB.
    /// </summary>
    public int MaxEntryBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// A node takes a snapshot of its topics once it has applied this many Raft log entries since its last one; the Raft
    /// log up to the snapshot is then deleted, a restart starts from the newest snapshot and replays only what follows
    /// it, and a node too far behind is sent the snapshot. Default 50,000; 0: never (the Raft log grows forever and a
    /// restart replays all of it).
    /// </summary>
    public long SnapshotEntries { get; set; } = 50_000;

    /// <summary>
    /// Mutual TLS between the nodes' Raft listeners (<c>Cluster:Tls:CertificatePath</c>, <c>Cluster:Tls:TrustedCaPath</c>, ...).
    /// Null (the default): the Raft listener is plain TCP and must stay on a private network.
    /// </summary>
    public ClusterTlsOptions? Tls { get; set; }

    /// <summary>How many data Raft groups the cluster runs. Only 1 is supported now: one group orders every topic.</summary>
    public int DataGroups { get; set; } = 1;

    /// <summary>True when cluster mode is on.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool Enabled => !string.IsNullOrWhiteSpace(NodeId);

    /// <summary>The parsed <see cref="Peers"/>, in the order given; valid only when <see cref="Validate"/> found nothing.</summary>
    internal IReadOnlyList<ClusterPeer> ParsedPeers() => ParsePeers(Peers, out _);

    /// <summary>This node's entry of <see cref="ParsedPeers"/>.</summary>
    internal ClusterPeer Self() => ParsedPeers().First(peer => peer.Id == NodeId);

    /// <summary>Every problem with these options; empty when they are valid or cluster mode is off.</summary>
    public IEnumerable<string> Validate()
    {
        if (!Enabled)
        {
            if (!string.IsNullOrWhiteSpace(Peers))
            {
                yield return "Cluster:Peers is set but Cluster:NodeId is not; set NodeId to this node's id among the peers";
            }

            yield break;
        }

        var peers = ParsePeers(Peers, out var problem);
        if (problem is not null)
        {
            yield return problem;
        }
        else if (peers.Count < 3)
        {
            yield return $"Cluster:Peers lists {peers.Count} node{(peers.Count == 1 ? string.Empty : "s")}; a cluster needs at least 3 (a majority must survive losing one)";
        }
        else if (peers.All(peer => peer.Id != NodeId))
        {
            yield return $"Cluster:NodeId '{NodeId}' is not among Cluster:Peers ({string.Join(", ", peers.Select(peer => peer.Id))})";
        }

        if (Advertise is { Length: > 0 } advertise && !TryParseEndPoint(advertise, out _))
        {
            yield return $"Cluster:Advertise '{advertise}' is not host:port";
        }

        if (AdvertiseWebSocket is { Length: > 0 } webSocket
            && (!Uri.TryCreate(webSocket, UriKind.Absolute, out var url) || url.Scheme is not ("ws" or "wss")))
        {
            yield return $"Cluster:AdvertiseWebSocket '{webSocket}' is not a ws:// or wss:// URL";
        }

        if (AdvertiseAdmin is { Length: > 0 } adminUrl
            && (!Uri.TryCreate(adminUrl, UriKind.Absolute, out var admin) || admin.Scheme is not ("http" or "https")))
        {
            yield return $"Cluster:AdvertiseAdmin '{adminUrl}' is not an http:// or https:// URL";
        }

        if (PeerAdminTimeout <= TimeSpan.Zero || PeerAdminTimeout > TimeSpan.FromMinutes(1))
        {
            yield return $"Cluster:PeerAdminTimeout is {PeerAdminTimeout}; it must be positive and at most a minute";
        }

        if (ElectionTimeoutMin < TimeSpan.FromMilliseconds(50) || ElectionTimeoutMax <= ElectionTimeoutMin || ElectionTimeoutMax > TimeSpan.FromMinutes(1))
        {
            yield return $"Cluster:ElectionTimeoutMin/Max are {ElectionTimeoutMin}/{ElectionTimeoutMax}; Min must be at least 50 ms and below Max, Max at most a minute";
        }

        if (RequestTimeout <= TimeSpan.Zero || ConnectTimeout <= TimeSpan.Zero)
        {
            yield return $"Cluster:RequestTimeout ({RequestTimeout}) and Cluster:ConnectTimeout ({ConnectTimeout}) must be positive";
        }

        if (LogChunkBytes is < 64 * 1024 or > 1024 * 1024 * 1024)
        {
            yield return $"Cluster:LogChunkBytes is {LogChunkBytes}; it must be 64 KiB..1 GiB";
        }

        if (MaxEntryBytes is < 1024 or > 64 * 1024 * 1024)
        {
            yield return $"Cluster:MaxEntryBytes is {MaxEntryBytes}; it must be 1 KiB..64 MiB";
        }

        foreach (var tlsProblem in Tls?.Validate() ?? [])
        {
            yield return tlsProblem;
        }

        if (SnapshotEntries is < 0 or > 1_000_000_000)
        {
            yield return $"Cluster:SnapshotEntries is {SnapshotEntries}; it must be 0 (never) or 1..1,000,000,000";
        }

        if (DataGroups != 1)
        {
            yield return $"Cluster:DataGroups is {DataGroups}; only 1 is supported (one Raft group orders every topic)";
        }
    }

    internal static bool TryParseEndPoint(string text, out IPEndPoint endPoint)
    {
        endPoint = null!;
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            return false;
        }

        var host = text[..colon].Trim('[', ']');
        if (host == "localhost")
        {
            endPoint = new IPEndPoint(IPAddress.Loopback, port);
            return true;
        }

        if (!IPAddress.TryParse(host, out var address))
        {
            return false;
        }

        endPoint = new IPEndPoint(address, port);
        return true;
    }

    private static List<ClusterPeer> ParsePeers(string text, out string? problem)
    {
        problem = null;
        var peers = new List<ClusterPeer>();
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var equals = item.IndexOf('=');
            if (equals <= 0)
            {
                problem = $"Cluster:Peers entry '{item}' is not id=host:port";
                return peers;
            }

            var id = item[..equals].Trim();
            if (!TryParseEndPoint(item[(equals + 1)..].Trim(), out var endPoint))
            {
                problem = $"Cluster:Peers entry '{item}': '{item[(equals + 1)..]}' is not host:port (an IP address or localhost, and a port 1..65535)";
                return peers;
            }

            if (peers.Any(peer => peer.Id == id))
            {
                problem = $"Cluster:Peers names node '{id}' twice";
                return peers;
            }

            if (peers.Any(peer => peer.EndPoint.Equals(endPoint)))
            {
                problem = $"Cluster:Peers gives {endPoint} to two nodes";
                return peers;
            }

            peers.Add(new ClusterPeer(id, endPoint));
        }

        return peers;
    }
}

/// <summary>One node of the cluster: its id and its Raft listener.</summary>
internal sealed record ClusterPeer(string Id, IPEndPoint EndPoint);
