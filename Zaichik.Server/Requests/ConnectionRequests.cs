using Microsoft.Extensions.Logging;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;
using Zaichik.Server.Security;
using Zaichik.Server.Sessions.Internal;
using Zaichik.Server.Storage;
using Zaichik.Server.Subscriptions;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Requests;

/// <summary>
/// The request handlers of one authenticated connection: they turn Publish, Subscribe, Unsubscribe, Commit, CreateTopic
/// and Ping into calls on the domain (topics, subscriptions) and its results into Ack, Error and Pong frames. The session
/// shell (<see cref="Sessions.ClientSession"/>) reads and decodes frames, calls one handler per frame on its read loop,
/// and flushes the replies written into <c>replies</c> once per read; the handlers never touch the socket but through
/// the connection's one <see cref="ConnectionWriter"/>. One file per frame kind.
/// </summary>
internal sealed partial class ConnectionRequests : IAsyncDisposable
{
    private readonly TopicRegistry _registry;
    private readonly ZaichikServerOptions _options;
    private readonly Diagnostics.ServerCounters _counters;
    private readonly ILogger _logger;
    private readonly TokenGrant _grant;
    private readonly ulong _producerId;
    private readonly PooledBufferWriter _replies;
    private readonly ConnectionWriter _writer;
    private readonly Action<string> _onTopicRetired;
    private readonly DeliveryWindow _window = new();
    private readonly Dictionary<string, Subscription> _subscriptions = new(StringComparer.Ordinal);
    private readonly List<Subscription> _subscriptionsToStart = [];
    private readonly List<DurableAck> _awaitingCommit = [];
    private readonly List<ReplicatedAck> _awaitingReplication = [];
    private readonly List<ulong> _batchIds = [];
    private System.Buffers.ArrayBufferWriter<byte>? _batch;
    private readonly List<PendingCreate> _pendingCreates = [];
    private readonly List<PendingPong> _pendingPongs = [];
    private Task _commitAcknowledgements = Task.CompletedTask;
    private Topic? _lastTopic;
    private string? _lastPublishAllowed;
    private int _publishesAwaitingCommit;
    private long _publishes;
    private long _endedMessagesOut;

    /// <param name="grant">What the connection's token allows.</param>
    /// <param name="producerId">The idempotent producer id of the connection's Hello; 0 for none.</param>
    /// <param name="replies">Where handlers write their replies; the shell flushes it once per read.</param>
    /// <param name="onTopicRetired">Called when a subscribed topic was reopened after a storage failure: the connection must end.</param>
    public ConnectionRequests(
        TopicRegistry registry,
        ZaichikServerOptions options,
        Diagnostics.ServerCounters counters,
        ILogger logger,
        TokenGrant grant,
        ulong producerId,
        PooledBufferWriter replies,
        ConnectionWriter writer,
        Action<string> onTopicRetired)
    {
        _registry = registry;
        _options = options;
        _counters = counters;
        _logger = logger;
        _grant = grant;
        _producerId = producerId;
        _replies = replies;
        _writer = writer;
        _onTopicRetired = onTopicRetired;
    }

    /// <summary>On a cluster node, the node: requests are carried out through Raft when it leads, and redirected when not.</summary>
    public Cluster.ClusterNode? Cluster { get; init; }

    /// <summary>Whether the connection is a WebSocket (a Redirect then names the leader's WebSocket URL).</summary>
    public bool OverWebSocket { get; init; }

    /// <summary>
    /// The protocol version negotiated in the Hello exchange. A version 7 client does not know the Redirect frame: it is
    /// told where the leader is in an Error NotLeader instead.
    /// </summary>
    public ushort Version { get; init; } = ProtocolVersion.Current;

    /// <summary>The token's name, for the state model.</summary>
    public string TokenName => _grant.Name;

    /// <summary>The Hello's producer id (0: none).</summary>
    public ulong ProducerId => _producerId;

    /// <summary>Publishes read so far.</summary>
    public long Publishes => Volatile.Read(ref _publishes);

    /// <summary>Publishes and creations waiting for their commit now.</summary>
    public int PublishesInFlight => Volatile.Read(ref _publishesAwaitingCommit);

    /// <summary>How many subscriptions the connection holds now; safe from any thread.</summary>
    public int SubscriptionCount
    {
        get
        {
            lock (_subscriptions)
            {
                return _subscriptions.Count;
            }
        }
    }

    /// <summary>The subscriptions now and every delivery the connection made; safe from any thread.</summary>
    public (State.SubscriptionView[] Subscriptions, long MessagesOut) DescribeSubscriptions()
    {
        Subscription[] subscriptions;
        lock (_subscriptions)
        {
            subscriptions = [.. _subscriptions.Values];
        }

        var messagesOut = Volatile.Read(ref _endedMessagesOut);
        var views = new State.SubscriptionView[subscriptions.Length];
        for (var i = 0; i < subscriptions.Length; i++)
        {
            var subscription = subscriptions[i];
            messagesOut += subscription.MessagesOut;
            views[i] = new State.SubscriptionView(subscription.Topic.Name, subscription.DurableName, subscription.AckPolicy.ToString(), subscription.Prefetch, subscription.Uncommitted,
                subscription.StartSequence, subscription.MessagesOut) { Group = subscription.GroupName };
        }

        return (views, messagesOut);
    }

    /// <summary>After each read: hands held Acks to the commit waiter and starts the subscriptions that read made.</summary>
    public void AfterRead(CancellationToken cancellationToken)
    {
        AcknowledgeWhenCommitted(cancellationToken);
        StartNewSubscriptions();
    }

    public async ValueTask DisposeAsync()
    {
        await _commitAcknowledgements.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        foreach (var subscription in _subscriptions.Values)
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
        }

        lock (_subscriptions)
        {
            _subscriptions.Clear();
        }
    }

    /// <summary>
    /// Hands this read's Always-durability publishes to one task that waits for their topics' commits and then
    /// sends their Acks together. Reading goes on meanwhile, so later publishes join the next group commit.
    /// </summary>
    public void AcknowledgeWhenCommitted(CancellationToken cancellationToken)
    {
        if (_batchIds.Count > 0 && Cluster is { } cluster)
        {
            ReplicateBatch(cluster, cancellationToken);
        }

        if (_awaitingCommit.Count == 0 && _pendingCreates.Count == 0 && _pendingPongs.Count == 0 && _awaitingReplication.Count == 0)
        {
            return;
        }

        var batch = _awaitingCommit.ToArray();
        var creates = _pendingCreates.ToArray();
        var pongs = _pendingPongs.ToArray();
        var replicated = _awaitingReplication.ToArray();
        _awaitingCommit.Clear();
        _pendingCreates.Clear();
        _pendingPongs.Clear();
        _awaitingReplication.Clear();
        Interlocked.Add(ref _publishesAwaitingCommit, batch.Length + creates.Length + replicated.Length);
        var previous = _commitAcknowledgements;
        _commitAcknowledgements = SendWhenCommittedAsync(batch, creates, pongs, replicated, previous, cancellationToken);
    }

    private async Task SendWhenCommittedAsync(
        DurableAck[] batch, PendingCreate[] creates, PendingPong[] pongs, ReplicatedAck[] replicated, Task previous, CancellationToken cancellationToken)
    {
        using var replies = new PooledBufferWriter();
        try
        {
            foreach (var (positions, nonce) in pongs)
            {
                try
                {
                    await positions.ConfigureAwait(false);
                }
                catch (IOException failure)
                {
                    FrameWriter.Write(replies, new ErrorFrame(null, ErrorCode.CommitNotDurable, $"Commits before Ping {nonce} are not on disk: {failure.Message}"));
                }
                catch (ReplicationUnavailableException failure)
                {
                    FrameWriter.Write(replies, new ErrorFrame(null, ErrorCode.CommitNotDurable, $"Commits before Ping {nonce} are not on a majority of the cluster: {failure.Message}"));
                }

                FrameWriter.Write(replies, new PongFrame(nonce));
            }

            foreach (var (creating, requestId) in creates)
            {
                try
                {
                    await creating.ConfigureAwait(false);
                    FrameWriter.Write(replies, new AckFrame(requestId, null, false));
                }
                catch (TopicException failure)
                {
                    FrameWriter.Write(replies, new ErrorFrame(requestId, failure.Code, failure.Message));
                }
                catch (ReplicationUnavailableException failure)
                {
                    FrameWriter.Write(replies, new ErrorFrame(requestId, ErrorCode.NoLeader, $"{failure.Message}; send it again"));
                }
            }

            foreach (var (replicating, index, requestId) in replicated)
            {
                await WriteReplicatedReplyAsync(replies, replicating, index, requestId).ConfigureAwait(false);
            }

            foreach (var group in batch.GroupBy(ack => ack.Outcome.Storage))
            {
                try
                {
                    var last = group.MaxBy(ack => ack.Outcome.Sequence);
                    await Topic.WhenDurableAsync(last.Outcome, cancellationToken).ConfigureAwait(false);
                    foreach (var ack in group)
                    {
                        FrameWriter.Write(replies, ack.Ack);
                    }
                }
                catch (IOException failure)
                {
                    foreach (var ack in group)
                    {
                        FrameWriter.Write(replies, new ErrorFrame(ack.Ack.RequestId, ErrorCode.StorageFailure, $"the message is stored but could not be made durable: {failure.Message}"));
                    }
                }
            }

            // Keep the order between batches: an earlier batch's Acks go first.
            await previous.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await _writer.WriteAsync(replies.WrittenMemory, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            Interlocked.Add(ref _publishesAwaitingCommit, -(batch.Length + creates.Length + replicated.Length));
        }
    }

    /// <summary>
    /// The answer to a publish carried out through the cluster: an Ack once the leader has applied it (a majority has
    /// it on disk), or NoLeader when it could not be committed here, in which case the client sends it again (an
    /// idempotent producer's repeat is then recognised, whether or not the first one was committed after all).
    /// </summary>
    private async Task WriteReplicatedReplyAsync(PooledBufferWriter frame, Task<global::Zaichik.Server.Cluster.BatchOutcome> replicating, int index, ulong requestId)
    {
        try
        {
            var batch = await replicating.ConfigureAwait(false);
            if (batch.Failures[index] is { } failure)
            {
                throw failure;
            }

            var outcome = batch.Outcomes[index];
            FrameWriter.Write(frame, new AckFrame(requestId, outcome.Sequence, outcome.Duplicate, Durable: true));
        }
        catch (ReplicationUnavailableException failure)
        {
            _counters.PublishRefused(ErrorCode.NoLeader);
            FrameWriter.Write(frame, new ErrorFrame(requestId, ErrorCode.NoLeader, $"{failure.Message}; send it again"));
        }
        catch (TopicException failure)
        {
            _counters.PublishRefused(failure.Code);
            FrameWriter.Write(frame, new ErrorFrame(requestId, failure.Code, failure.Message));
        }
        catch (Exception failure) when (failure is not OperationCanceledException)
        {
            _counters.PublishRefused(ErrorCode.StorageFailure);
            FrameWriter.Write(frame, new ErrorFrame(requestId, ErrorCode.StorageFailure, $"the message was not stored: {failure.Message}"));
        }
    }

    /// <summary>
    /// On a cluster node that does not lead: a Redirect naming the leader's address for this connection's transport (to
    /// a version 7 client, which does not know Redirect, an Error NotLeader whose text names them), or NoLeader while
    /// none is known (an election, or the leader's address not learnt yet).
    /// </summary>
    private void RedirectToLeader(Cluster.ClusterNode cluster, ulong? requestId, string topic)
    {
        var leader = cluster.Leader;
        var endpoint = leader?.EndpointFor(OverWebSocket);
        if (endpoint is null)
        {
            Reply(new ErrorFrame(requestId, ErrorCode.NoLeader,
                $"cluster node {cluster.NodeId} does not lead '{topic}' and knows no leader{(OverWebSocket && leader is not null ? " with a WebSocket listener" : string.Empty)} now; send it again shortly"));
            return;
        }

        if (Version < ProtocolVersion.FirstWithRedirect)
        {
            Reply(new ErrorFrame(requestId, ErrorCode.NotLeader, $"node {leader!.NodeId} leads topic '{topic}'; connect to {endpoint}"));
            return;
        }

        FrameWriter.Write(_replies, new RedirectFrame(requestId, topic, leader!.NodeId, endpoint));
    }

    /// <summary>Hands the publishes batched so far to the cluster as one log entry; their Acks wait in <see cref="_awaitingReplication"/>.</summary>
    private void ReplicateBatch(Cluster.ClusterNode cluster, CancellationToken cancellationToken)
    {
        var entry = global::Zaichik.Server.Cluster.ClusterCommand.EndBatch(_batch!, _batchIds.Count);
        var replicating = ReplicateBatchAsync(cluster, entry, new global::Zaichik.Server.Cluster.BatchOutcome(_batchIds.Count), cancellationToken);
        for (var i = 0; i < _batchIds.Count; i++)
        {
            _awaitingReplication.Add(new ReplicatedAck(replicating, i, _batchIds[i]));
        }

        _batchIds.Clear();
        _batch!.ResetWrittenCount();
    }

    private static async Task<global::Zaichik.Server.Cluster.BatchOutcome> ReplicateBatchAsync(
        Cluster.ClusterNode cluster, byte[] entry, global::Zaichik.Server.Cluster.BatchOutcome outcome, CancellationToken cancellationToken)
    {
        await cluster.ReplicateAsync(entry, outcome, cancellationToken).ConfigureAwait(false);
        await outcome.Task.ConfigureAwait(false);
        return outcome;
    }

    /// <summary>A publish being carried out through the cluster, answered in order with the read's other held replies.</summary>
    private readonly record struct ReplicatedAck(Task<global::Zaichik.Server.Cluster.BatchOutcome> Replicating, int Index, ulong RequestId);

    /// <summary>A Ping read after Commits of durable consumers on Always topics: answered once their positions are on disk.</summary>
    private readonly record struct PendingPong(Task Positions, ulong Nonce);

    /// <summary>A CreateTopic whose topic is being recorded in the catalog: answered when that is on disk, meanwhile reading goes on.</summary>
    private readonly record struct PendingCreate(Task Creating, ulong RequestId);

    /// <summary>An Ack held back until the message it names (for a duplicate, the original) is on disk.</summary>
    private readonly record struct DurableAck(PublishOutcome Outcome, AckFrame Ack);

    private ValueTask<Topic> ResolveTopicAsync(string name, CancellationToken cancellationToken)
    {
        // The frame reader hands out the same string instance for a repeated topic name.
        if (_lastTopic is { } last && (ReferenceEquals(last.Name, name) || last.Name == name))
        {
            return ValueTask.FromResult(last);
        }

        return ResolveAndRememberAsync(name, cancellationToken);
    }

    private async ValueTask<Topic> ResolveAndRememberAsync(string name, CancellationToken cancellationToken)
    {
        var topic = await _registry.GetForUseAsync(name, cancellationToken).ConfigureAwait(false);
        _lastTopic = topic;
        return topic;
    }

    private void StartNewSubscriptions()
    {
        foreach (var subscription in _subscriptionsToStart)
        {
            subscription.Start();
        }

        _subscriptionsToStart.Clear();
    }

    private void Reply(in AckFrame ack) => FrameWriter.Write(_replies, ack);

    private void Reply(in ErrorFrame error) => FrameWriter.Write(_replies, error);

    [LoggerMessage(Level = LogLevel.Error, Message = "Publish to {Topic} failed in storage")]
    private partial void LogStorageFailure(Exception exception, string topic);
}
