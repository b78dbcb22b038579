using System.Collections.Concurrent;
using System.Net;
using DotNext.Net.Cluster.Consensus.Raft;
using DotNext.Net.Cluster.Consensus.Raft.Membership;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;
using Zaichik.Server.Storage;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Cluster;

/// <summary>
/// This broker's membership of a cluster: one Raft group over every node (DotNext.Net.Cluster, TCP transport,
/// persistent write-ahead log in <c>DataPath/cluster/raft</c>). The leader proposes what its clients send
/// (<see cref="ReplicateAsync"/>); every node applies committed entries to its topics (<see cref="ReplicatedState"/>);
/// a node that does not lead tells its clients where the leader is (<see cref="Leader"/>), and when this node stops
/// leading, its client connections are closed so that they find the new one.
/// </summary>
internal sealed partial class ClusterNode : IHostedLifecycleService, ITopicReplication, IAsyncDisposable
{
    /// <summary>The folder under <c>DataPath</c> that holds the Raft log.</summary>
    public const string RaftFolder = "raft";

    private const string ClientEndpointKey = "zaichik-client";
    private const string WebSocketKey = "zaichik-websocket";
    private const string NodeIdKey = "zaichik-node";
    private const string AdminKey = "zaichik-admin";

    private readonly ClusterOptions _options;
    private readonly string _host;
    private readonly string _dataPath;
    private readonly string _viewPath;
    private readonly TopicRegistry _registry;
    private readonly bool _autoCreateTopics;
    private readonly IReadOnlyList<string> _damagedSnapshots;
    private readonly BoundListeners _listeners;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger<ClusterNode> _logger;
    private readonly TimeProvider _time;
    private readonly Diagnostics.ServerMetrics _metrics;
    private readonly Dictionary<IPEndPoint, string> _idsByEndPoint;
    private readonly ConcurrentDictionary<string, LeaderAddress> _addresses = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _peerAdmin = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lazy<HttpClient> _http = new(() => new HttpClient());
    private RaftCluster? _raft;
    private WriteAheadLog? _log;
    private ReplicatedState? _state;
    private ClusterTls? _tls;
    private volatile bool _serving;
    private long _leaderSince;
    private long _elections;

    public ClusterNode(
        IOptions<ZaichikServerOptions> options, TopicRegistry registry, BoundListeners listeners, ILoggerFactory loggers, TimeProvider time, Diagnostics.ServerMetrics metrics)
    {
        _metrics = metrics;
        _options = options.Value.Cluster;
        _host = options.Value.Host == "localhost" ? "127.0.0.1" : options.Value.Host;
        _dataPath = options.Value.ClusterDataPath ?? options.Value.DataPath;
        _viewPath = options.Value.DataPath;
        _registry = registry;
        _autoCreateTopics = options.Value.AutoCreateTopics;
        _damagedSnapshots = options.Value.DamagedSnapshots;
        _listeners = listeners;
        _loggers = loggers;
        _logger = loggers.CreateLogger<ClusterNode>();
        _time = time;
        _idsByEndPoint = _options.ParsedPeers().ToDictionary(peer => peer.EndPoint, peer => peer.Id);
    }

    /// <summary>This node's id.</summary>
    public string NodeId => _options.NodeId;

    /// <summary>True while this node leads and has applied everything committed before it took over: it may serve requests.</summary>
    public bool IsLeader => _serving && _raft is { } raft && !raft.LeadershipToken.IsCancellationRequested;

    /// <summary>Raised (on a pool thread) when this node stops leading: its clients must go to the new leader.</summary>
    public event Action? LeadershipLost;

    /// <summary>Where the leader takes clients, when another node leads and its address is known; null otherwise.</summary>
    public LeaderAddress? Leader =>
        _raft?.Leader is { IsRemote: true } leader && _idsByEndPoint.TryGetValue(ToIp(leader.EndPoint), out var id) && _addresses.TryGetValue(id, out var address)
            ? address
            : null;

    /// <summary>Appends an entry, waits until a majority has it, and until this node has applied it.</summary>
    /// <exception cref="ReplicationUnavailableException">This node does not lead (any more), or the entry could not be committed.</exception>
    public async Task ReplicateAsync(byte[] entry, object? context, CancellationToken cancellationToken)
    {
        var raft = _raft ?? throw new ReplicationUnavailableException("the cluster node is still starting");
        try
        {
            await raft.ReplicateAsync(new ReadOnlyMemory<byte>(entry), context, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception failure) when (failure is NotLeaderException or QuorumUnreachableException or InvalidOperationException or ObjectDisposedException
            || (failure is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new ReplicationUnavailableException($"node {NodeId} could not commit the request: {failure.Message}", failure);
        }
    }

    /// <summary>
    /// Gives up leadership (before maintenance, say): this node becomes a follower, closes its client connections
    /// (they reconnect and are redirected), and the nodes elect a leader, which may be this one again. False when this
    /// node does not lead and serve.
    /// </summary>
    public async Task<bool> StepDownAsync(CancellationToken cancellationToken)
    {
        if (!IsLeader || _raft is not { } raft)
        {
            return false;
        }

        LogSteppingDown(NodeId, raft.Term);
        return await ((DotNext.Net.Cluster.ICluster)raft).ResignAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Creates a topic on every node through the log (or confirms an identical one); throws TopicException as CreateTopic does.</summary>
    public async Task CreateTopicAsync(string name, TopicSettings settings, CancellationToken cancellationToken)
    {
        var applied = new AppliedOutcome<bool>();
        await ReplicateAsync(ClusterCommand.EncodeCreateTopic(name, settings), applied, cancellationToken).ConfigureAwait(false);
        await applied.Task.ConfigureAwait(false);
    }

    Task ITopicReplication.ReplicateConsumerCommit(string topic, string consumer, long sequence) =>
        ReplicateAsync(ClusterCommand.EncodeConsumerCommit(topic, consumer, sequence), new AppliedOutcome<bool>(), _stopping.Token);

    Task ITopicReplication.ReplicateGroupState(string topic, string group, GroupSnapshot state) =>
        ReplicateAsync(ClusterCommand.EncodeGroupState(topic, group, state), new AppliedOutcome<bool>(), _stopping.Token);

    async ValueTask<Topic> ITopicReplication.EnsureDeadLetterTopicAsync(string name, TimeSpan retention, CancellationToken cancellationToken)
    {
        // Every topic a node has came through the log, so one the leader has exists on every node.
        if (_registry.TryGet(name, out var existing))
        {
            return existing;
        }

        if (!_autoCreateTopics)
        {
            throw new TopicException(ErrorCode.TopicNotFound,
                $"dead-letter topic '{name}' does not exist and this server does not create topics automatically; create it with CreateTopic");
        }

        try
        {
            await CreateTopicAsync(name, TopicSettings.Default with { RetentionTtlMs = (long)retention.TotalMilliseconds }, cancellationToken).ConfigureAwait(false);
        }
        catch (TopicException) when (_registry.TryGet(name, out _))
        {
            // Created meanwhile by a publish, with the default settings: it serves as it is.
        }

        return _registry.TryGet(name, out var created)
            ? created
            : throw new TopicException(ErrorCode.StorageFailure, $"dead-letter topic '{name}' was not created on node {NodeId}");
    }

    async ValueTask<PublishOutcome> ITopicReplication.PublishAsync(
        string topic, ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte> payload, ReadOnlyMemory<byte> headers, CancellationToken cancellationToken)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        ClusterCommand.BeginBatch(buffer);
        ClusterCommand.AddToBatch(buffer, topic, _time.GetUtcNow().ToUnixTimeMilliseconds(), key, payload.Span, headers.Span, ProducerStamp.None);
        var outcome = new BatchOutcome(1);
        await ReplicateAsync(ClusterCommand.EndBatch(buffer, 1), outcome, cancellationToken).ConfigureAwait(false);
        await outcome.Task.ConfigureAwait(false);
        if (outcome.Failures[0] is { } failure)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }

        return outcome.Outcomes[0];
    }

    /// <summary>The state machine, once the node has started.</summary>
    internal ReplicatedState? State => _state;

    /// <summary>What the admin API shows of this node alone: its role, its log, the leader and every member as it sees them.</summary>
    public ClusterView Describe()
    {
        var raft = _raft;
        var log = _log;
        var members = raft?.Members.Select(member =>
        {
            var id = IdOf(member);
            return new ClusterMemberView(
                id,
                member.EndPoint.ToString()!,
                member.IsRemote ? member.Status.ToString() : "Available",
                member.IsLeader,
                !member.IsRemote,
                _addresses.TryGetValue(id, out var address) ? address.ClientEndpoint : null);
        }).OrderBy(member => member.Id, StringComparer.Ordinal).ToArray() ?? [];
        var leaderId = raft?.Leader is { } leader && _idsByEndPoint.TryGetValue(ToIp(leader.EndPoint), out var leaderNode) ? leaderNode : null;
        var self = new ClusterView(
            NodeId,
            raft is null ? "Starting" : IsLeader ? "Leader" : leaderId is null ? "Candidate" : leaderId == NodeId ? "Leader (catching up)" : "Follower",
            leaderId,
            raft?.Term ?? 0,
            Interlocked.Read(ref _elections),
            log?.LastEntryIndex ?? 0,
            log?.LastCommittedEntryIndex ?? 0,
            log?.LastAppliedIndex ?? 0,
            _state?.Refused ?? 0,
            _state?.Snapshot?.Index ?? 0,
            _state?.Snapshot?.Bytes ?? 0,
            members);
        return self with
        {
            Members = members.Select(member => member.IsSelf ? member with { Role = self.Role, LastIndex = self.LastIndex, AppliedIndex = self.AppliedIndex } : member).ToArray(),
        };
    }

    /// <summary>
    /// <see cref="Describe"/>, with every other member's role and log indices asked of its admin API (as the members
    /// advertise it, with the caller's credentials, within <see cref="ClusterOptions.PeerAdminTimeout"/>), and each
    /// member's lag: the leader's last log index less the entries the member has applied. A member that cannot be asked
    /// shows why in <c>error</c>.
    /// </summary>
    public async Task<ClusterView> DescribeClusterAsync(string? authorization, CancellationToken cancellationToken)
    {
        var view = Describe();
        var remote = _raft?.Members.Where(member => member.IsRemote).ToDictionary(IdOf) ?? [];
        var members = await Task.WhenAll(view.Members.Select(member =>
            member.IsSelf || !remote.TryGetValue(member.Id, out var raftMember) ? Task.FromResult(member) : AskPeerAsync(member, raftMember, authorization, cancellationToken))).ConfigureAwait(false);
        var leaderLast = members.FirstOrDefault(member => member.IsLeader)?.LastIndex ?? members.Max(member => member.LastIndex);
        return view with
        {
            Members = members.Select(member => member with { Lag = leaderLast is { } last && member.AppliedIndex is { } applied ? Math.Max(0, last - applied) : null }).ToArray(),
        };
    }

    private async Task<ClusterMemberView> AskPeerAsync(ClusterMemberView member, RaftClusterMember raftMember, string? authorization, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        timeout.CancelAfter(_options.PeerAdminTimeout);
        try
        {
            if (!_peerAdmin.TryGetValue(member.Id, out var admin))
            {
                var metadata = await raftMember.GetMetadataAsync(refresh: true, timeout.Token).ConfigureAwait(false);
                if (!metadata.TryGetValue(AdminKey, out var advertised))
                {
                    return member with { Error = "its admin API is off" };
                }

                _peerAdmin[member.Id] = admin = advertised;
            }

            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(new Uri(admin), "api/cluster?scope=local"));
            if (authorization is { Length: > 0 })
            {
                request.Headers.TryAddWithoutValidation("Authorization", authorization);
            }

            using var response = await _http.Value.SendAsync(request, timeout.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                return member with { Error = $"its admin API at {admin} answered {(int)response.StatusCode}" };
            }

            var peer = await System.Net.Http.Json.HttpContentJsonExtensions.ReadFromJsonAsync(response.Content, Admin.AdminJsonContext.Default.ClusterView, timeout.Token).ConfigureAwait(false);
            return peer is null ? member with { Error = $"its admin API at {admin} answered nothing" } : member with { Role = peer.Role, LastIndex = peer.LastIndex, AppliedIndex = peer.AppliedIndex };
        }
        catch (Exception failure) when (failure is HttpRequestException or OperationCanceledException or System.Text.Json.JsonException or UriFormatException or InvalidOperationException
            || failure.GetType().Namespace?.StartsWith("DotNext", StringComparison.Ordinal) == true || failure is IOException)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            return member with { Error = failure is OperationCanceledException ? $"no answer within {_options.PeerAdminTimeout.TotalMilliseconds:0} ms" : failure.Message };
        }
    }

    private string IdOf(RaftClusterMember member) => _idsByEndPoint.TryGetValue(ToIp(member.EndPoint), out var id) ? id : member.EndPoint.ToString()!;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Once the client listeners are bound (their ports are advertised), joins the cluster.</summary>
    public async Task StartedAsync(CancellationToken cancellationToken)
    {
        var self = _options.Self();
        var storage = new EndPointConfigurationStorage();
        var members = storage.CreateInitialConfigurationBuilder();
        foreach (var peer in _options.ParsedPeers())
        {
            members.Add(peer.EndPoint);
        }

        members.Build();
        _tls = _options.Tls?.Load();
        var configuration = new RaftCluster.TcpConfiguration(self.EndPoint)
        {
            ConfigurationStorage = storage,
            LowerElectionTimeout = (int)_options.ElectionTimeoutMin.TotalMilliseconds,
            UpperElectionTimeout = (int)_options.ElectionTimeoutMax.TotalMilliseconds,
            RequestTimeout = _options.RequestTimeout,
            ConnectTimeout = _options.ConnectTimeout,
            ColdStart = false,
            LoggerFactory = _loggers,
            SslOptions = _tls?.CreateOptions(),
        };

        if (_tls is not null)
        {
            LogRaftTls(NodeId, _tls.Subject);
        }
        else
        {
            LogRaftPlain(NodeId, self.EndPoint.ToString());
        }

        var clientEndpoint = _options.Advertise is { Length: > 0 } advertise ? advertise : $"{(_host.Contains(':', StringComparison.Ordinal) ? $"[{_host}]" : _host)}:{_listeners.TcpPort}";
        var webSocket = _options.AdvertiseWebSocket is { Length: > 0 } url ? url : _listeners.WebSocketUrl;
        configuration.Metadata[NodeIdKey] = NodeId;
        configuration.Metadata[ClientEndpointKey] = clientEndpoint;
        if (webSocket is not null)
        {
            configuration.Metadata[WebSocketKey] = webSocket;
        }

        if ((_options.AdvertiseAdmin is { Length: > 0 } adminUrl ? adminUrl : _listeners.AdminUrl) is { } admin)
        {
            configuration.Metadata[AdminKey] = admin;
        }

        _addresses[NodeId] = new LeaderAddress(NodeId, clientEndpoint, webSocket);
        // The view holds the newest snapshot already (ZaichikServer.ClusterDataFolders): the log replays what follows it.
        var snapshots = new ClusterSnapshots(_dataPath);
        var restored = snapshots.Newest();
        foreach (var damage in _damagedSnapshots)
        {
            LogSnapshotDamaged(NodeId, damage, restored?.Index ?? 0);
        }

        _state = new ReplicatedState(_registry, snapshots, restored, _viewPath, _options.SnapshotEntries, _time, _logger, _metrics.SnapshotDuration);
        _log = new WriteAheadLog(
            new WriteAheadLog.Options
            {
                Location = Path.Combine(_dataPath, RaftFolder),
                HashAlgorithm = WriteAheadLog.IntegrityHashAlgorithm.Crc32,
                ChunkSize = _options.LogChunkBytes,
                ConcurrencyLevel = 64,
            },
            _state);
        _raft = new RaftCluster(configuration) { AuditTrail = _log };
        _raft.LeaderChanged += OnLeaderChanged;
        _registry.Context.Replication = this;
        await _raft.StartAsync(cancellationToken).ConfigureAwait(false);
        _ = Task.Run(LearnAllAddressesAsync, CancellationToken.None);
        LogJoined(NodeId, self.EndPoint.ToString(), _options.ParsedPeers().Count, clientEndpoint);
    }

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Leaves the cluster before the topics close (the broker's lifecycle closes them once every service has stopped).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _serving = false;
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_raft is { } raft)
        {
            raft.LeaderChanged -= OnLeaderChanged;
            try
            {
                await raft.StopAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception failure) when (failure is not OperationCanceledException)
            {
                LogStopFailed(failure);
            }
        }

        if (_state is { } state)
        {
            await state.StopAsync().ConfigureAwait(false);
        }

        if (_log is { } log)
        {
            await log.DisposeAsync().ConfigureAwait(false);
        }
    }

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        _raft?.Dispose();
        if (_log is { } log)
        {
            await log.DisposeAsync().ConfigureAwait(false);
        }

        _stopping.Dispose();
        _tls?.Dispose();
        if (_http.IsValueCreated)
        {
            _http.Value.Dispose();
        }
    }

    private void OnLeaderChanged(RaftCluster<RaftClusterMember> cluster, RaftClusterMember? leader)
    {
        var wasServing = _serving;
        _serving = false;
        if (leader is null)
        {
            LogNoLeader(NodeId, cluster.Term);
        }
        else
        {
            var id = _idsByEndPoint.TryGetValue(ToIp(leader.EndPoint), out var known) ? known : leader.EndPoint.ToString()!;
            Interlocked.Increment(ref _elections);
            LogLeader(NodeId, id, cluster.Term);
            if (!leader.IsRemote)
            {
                Interlocked.Exchange(ref _leaderSince, _time.GetTimestamp());
                // Off the election's thread: the handler runs inside Raft's state transition, which the barrier waits on.
                _ = Task.Run(ServeWhenCaughtUpAsync);
            }
            else if (!_addresses.ContainsKey(id))
            {
                _ = Task.Run(() => LearnAddressAsync(id, leader));
            }
        }

        if (wasServing && LeadershipLost is { } lost)
        {
            ThreadPool.QueueUserWorkItem(_ => lost());
        }
    }

    /// <summary>A new leader serves once it has applied every entry committed before its term: nothing acknowledged is missing from its topics.</summary>
    private async Task ServeWhenCaughtUpAsync()
    {
        try
        {
            // The event comes while the transition runs: the leadership token is the new one only once it has completed.
            using var waiting = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            waiting.CancelAfter(2 * _options.ElectionTimeoutMax);
            var leadership = await _raft!.WaitForLeadershipAsync(waiting.Token).ConfigureAwait(false);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(leadership, _stopping.Token);
            await _raft.ApplyReadBarrierAsync(ReadBarrierType.Strong, linked.Token).ConfigureAwait(false);
            if (!leadership.IsCancellationRequested)
            {
                _serving = true;
                LogServing(NodeId, _time.GetElapsedTime(Interlocked.Read(ref _leaderSince)).TotalMilliseconds);
            }
        }
        catch (Exception failure) when (failure is OperationCanceledException or NotLeaderException or QuorumUnreachableException or ObjectDisposedException or InvalidOperationException)
        {
            // Leadership went before the barrier: the next leader does this.
            LogBarrierFailed(NodeId, failure.GetType().Name + ": " + failure.Message);
        }
    }

    /// <summary>
    /// Learns every other member's advertised addresses in the background, asking each one that has not answered yet
    /// once a second until it does (or the node stops): a Redirect can then name a newly elected leader at once, and
    /// the cluster view shows where each member takes clients.
    /// </summary>
    private async Task LearnAllAddressesAsync()
    {
        try
        {
            while (!_stopping.IsCancellationRequested && _raft is { } raft)
            {
                var missing = raft.Members.Where(member => member.IsRemote && !_addresses.ContainsKey(IdOf(member))).ToArray();
                if (missing.Length == 0)
                {
                    return;
                }

                foreach (var member in missing)
                {
                    await LearnAddressAsync(IdOf(member), member, quiet: true).ConfigureAwait(false);
                }

                await Task.Delay(TimeSpan.FromSeconds(1), _time, _stopping.Token).ConfigureAwait(false);
            }
        }
        catch (Exception failure) when (failure is OperationCanceledException or ObjectDisposedException)
        {
            // The node stops.
        }
    }

    /// <summary>Asks a member (the new leader) for the addresses it advertises, once; Redirects can name it from then on.</summary>
    private async Task LearnAddressAsync(string id, RaftClusterMember leader, bool quiet = false)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            timeout.CancelAfter(_options.RequestTimeout);
            var metadata = await leader.GetMetadataAsync(refresh: true, timeout.Token).ConfigureAwait(false);
            if (metadata.TryGetValue(ClientEndpointKey, out var client))
            {
                _addresses[id] = new LeaderAddress(id, client, metadata.TryGetValue(WebSocketKey, out var webSocket) ? webSocket : null);
            }
        }
        catch (Exception failure) when (failure is not NullReferenceException)
        {
            if (!quiet)
            {
                LogAddressUnknown(id, failure.Message);
            }
        }
    }

    private static IPEndPoint ToIp(EndPoint endPoint) => endPoint switch
    {
        IPEndPoint ip => ip,
        DnsEndPoint { Host: "localhost" } dns => new IPEndPoint(IPAddress.Loopback, dns.Port),
        DnsEndPoint dns when IPAddress.TryParse(dns.Host, out var address) => new IPEndPoint(address, dns.Port),
        _ => new IPEndPoint(IPAddress.None, 0),
    };

    [LoggerMessage(Level = LogLevel.Information, Message = "Cluster node {NodeId} steps down as leader in term {Term}, as the admin API asked")]
    private partial void LogSteppingDown(string nodeId, long term);

    [LoggerMessage(Level = LogLevel.Error, Message = "Cluster node {NodeId}: {Damage}; it was renamed with .damaged and the node starts from the snapshot of entry {Index} (0: none), replaying the Raft log after it")]
    private partial void LogSnapshotDamaged(string nodeId, string damage, long index);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cluster node {NodeId} joined: Raft on {RaftEndpoint}, {Peers} nodes, clients redirected here at {ClientEndpoint}")]
    private partial void LogJoined(string nodeId, string raftEndpoint, int peers, string clientEndpoint);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cluster node {NodeId}: Raft connections use mutual TLS as {Subject}; peers must chain to Cluster:Tls:TrustedCaPath")]
    private partial void LogRaftTls(string nodeId, string subject);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster node {NodeId}: the Raft listener {RaftEndpoint} is plain TCP without authentication; keep it on a private network or set Cluster:Tls")]
    private partial void LogRaftPlain(string nodeId, string raftEndpoint);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cluster node {NodeId}: {Leader} leads (term {Term})")]
    private partial void LogLeader(string nodeId, string leader, long term);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster node {NodeId}: no leader (term {Term}); requests are answered NoLeader until one is elected")]
    private partial void LogNoLeader(string nodeId, long term);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cluster node {NodeId} leads and serves clients, {Ms:0} ms after its election")]
    private partial void LogServing(string nodeId, double ms);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The client address of cluster node {NodeId} is not known yet ({Reason}); requests are answered NoLeader meanwhile")]
    private partial void LogAddressUnknown(string nodeId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster node {NodeId} was elected but does not serve: {Reason}")]
    private partial void LogBarrierFailed(string nodeId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Leaving the cluster failed")]
    private partial void LogStopFailed(Exception exception);

    /// <summary>The fixed membership, kept in memory: every node starts from <c>Cluster:Peers</c>.</summary>
    private sealed class EndPointConfigurationStorage : InMemoryClusterConfigurationStorage<EndPoint>
    {
        protected override void Encode(EndPoint address, ref DotNext.Buffers.BufferWriterSlim<byte> output) =>
            DotNext.Net.EndPointFormatter.WriteEndPoint(ref output, address);

        protected override EndPoint Decode(ref DotNext.Buffers.SequenceReader reader) =>
            DotNext.Net.EndPointFormatter.ReadEndPoint(ref reader);
    }
}

/// <summary>Where a cluster node takes clients.</summary>
internal sealed record LeaderAddress(string NodeId, string ClientEndpoint, string? WebSocketUrl)
{
    /// <summary>Where a client of the given transport connects: the TCP endpoint, or the WebSocket URL (null when the node has no WebSocket listener).</summary>
    public string? EndpointFor(bool webSocket) => webSocket ? WebSocketUrl : ClientEndpoint;
}

/// <summary>A cluster node as the admin API shows it (<c>GET /api/cluster</c>).</summary>
public sealed record ClusterView(
    string NodeId, string Role, string? Leader, long Term, long LeaderChanges, long LastIndex, long CommitIndex, long AppliedIndex, long RefusedEntries,
    long SnapshotIndex, long SnapshotBytes, IReadOnlyList<ClusterMemberView> Members);

/// <summary>
/// One member as the node answering sees it. <see cref="Role"/>, <see cref="LastIndex"/> and <see cref="AppliedIndex"/>
/// are the member's own (asked of its admin API); <see cref="Lag"/> is the leader's last index less the member's applied
/// index; <see cref="Error"/> says why they are missing.
/// </summary>
public sealed record ClusterMemberView(string Id, string RaftEndpoint, string Status, bool IsLeader, bool IsSelf, string? ClientEndpoint)
{
    public string? Role { get; init; }

    public long? LastIndex { get; init; }

    public long? AppliedIndex { get; init; }

    public long? Lag { get; init; }

    public string? Error { get; init; }
}
