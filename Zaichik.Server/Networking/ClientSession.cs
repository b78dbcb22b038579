using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;
using Zaichik.Server.Networking.Internal;
using Zaichik.Server.Security;
using Zaichik.Server.Storage;
using Zaichik.Server.Subscriptions;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Networking;

/// <summary>
/// One client connection: the handshake, then a loop that parses every frame in each read, handles it, and
/// sends the replies of the whole read in one flush. Replies are encoded into a private buffer while frames are
/// handled and only then handed to the <see cref="ConnectionWriter"/>, which the subscriptions' pumps share.
/// The <see cref="IdleConnectionMonitor"/> ends a session that has been silent too long by cancelling its pending read.
/// </summary>
internal sealed partial class ClientSession : IAsyncDisposable
{
    /// <summary>Replies are flushed early when a single read produces more than this.</summary>
    private const int ReplyFlushThreshold = 64 * 1024;

    /// <summary>How long an expired session may take to end by itself before its connection is aborted.</summary>
    private static readonly TimeSpan ExpiredSessionGrace = TimeSpan.FromSeconds(5);

    private readonly ConnectionContext _connection;
    private readonly TopicRegistry _registry;
    private readonly ZaichikServerOptions _options;
    private readonly TokenAuthenticator _authenticator;
    private readonly TimeProvider _time;
    private readonly ErrorCode? _refusal;
    private readonly ILogger _logger;
    private readonly Diagnostics.ServerCounters _counters;
    private readonly PipeReader _input;
    private readonly ConnectionWriter _writer;
    private readonly FrameReader _frames;
    private readonly PooledBufferWriter _replies = new();
    private readonly DeliveryWindow _window = new();
    private readonly Dictionary<string, Subscription> _subscriptions = new(StringComparer.Ordinal);
    private readonly List<Subscription> _subscriptionsToStart = [];
    private readonly List<DurableAck> _awaitingCommit = [];
    private readonly List<PendingCreate> _pendingCreates = [];
    private readonly List<PendingPong> _pendingPongs = [];
    private Task _commitAcknowledgements = Task.CompletedTask;
    private readonly CancellationTokenSource _ended = new();
    private Topic? _lastTopic;
    private string? _lastPublishAllowed;
    private TokenGrant _grant = TokenGrant.Everything;
    private ulong _producerId;
    private int _publishesAwaitingCommit;
    private long _lastActivity;
    private volatile bool _handshakeDone;
    private volatile string? _expiry;
    private volatile string? _topicRetired;
    private long _bytesIn;
    private long _publishes;
    private long _endedMessagesOut;

    /// <param name="refusal">When set, the session answers the Hello with this Error and ends (the server is full).</param>
    public ClientSession(
        ConnectionContext connection,
        TopicRegistry registry,
        ZaichikServerOptions options,
        TokenAuthenticator authenticator,
        TimeProvider time,
        ErrorCode? refusal,
        ILogger logger,
        Diagnostics.ServerCounters? counters = null)
    {
        _counters = counters ?? new Diagnostics.ServerCounters();
        _connection = connection;
        _registry = registry;
        _options = options;
        _authenticator = authenticator;
        _time = time;
        _refusal = refusal;
        _logger = logger;
        _lastActivity = time.GetTimestamp();
        _input = connection.Transport.Input;
        _writer = new ConnectionWriter(connection.Transport.Output);
        _frames = new FrameReader(options.MaxFrameSize);
        ConnectedAt = time.GetUtcNow();
    }

    /// <summary>How many subscriptions the connection holds now.</summary>
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

    /// <summary>When the connection was accepted.</summary>
    public DateTimeOffset ConnectedAt { get; }

    /// <summary>
    /// What this connection is doing now, for the broker state model. Safe to call from any thread: the subscriptions
    /// are copied under the lock their changes take, and counters are read as they are.
    /// </summary>
    public State.ConnectionView Describe()
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
            views[i] = new State.SubscriptionView(subscription.Topic.Name, subscription.DurableName, subscription.Prefetch, subscription.Uncommitted,
                subscription.StartSequence, subscription.MessagesOut);
        }

        return new State.ConnectionView(
            _connection.ConnectionId,
            _connection.RemoteEndPoint?.ToString(),
            _authenticator.Required && _handshakeDone ? _grant.Name : null,
            _connection.Features.Get<Microsoft.AspNetCore.Connections.Features.ITlsHandshakeFeature>() is not null,
            ConnectedAt,
            _handshakeDone,
            _producerId,
            Volatile.Read(ref _publishes),
            Volatile.Read(ref _bytesIn),
            messagesOut,
            _writer.BytesWritten,
            Volatile.Read(ref _publishesAwaitingCommit),
            views);
    }

    public async Task RunAsync(CancellationToken stopping)
    {
        try
        {
            if (await HandshakeAsync(stopping).ConfigureAwait(false))
            {
                await ReadLoopAsync(stopping).ConfigureAwait(false);
            }

            if (_expiry is { } expiry)
            {
                LogExpired(_connection.ConnectionId, expiry);
                await SendConnectionErrorAsync(ErrorCode.IdleTimeout, expiry).ConfigureAwait(false);
            }
            else if (_topicRetired is { } retired)
            {
                LogExpired(_connection.ConnectionId, retired);
                await SendConnectionErrorAsync(ErrorCode.StorageFailure, retired).ConfigureAwait(false);
            }
        }
        catch (ProtocolViolationException violation)
        {
            LogProtocolViolation(_connection.ConnectionId, violation.Code, violation.Message);
            await SendConnectionErrorAsync(violation.Code, violation.Message).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            if (!_connection.ConnectionClosed.IsCancellationRequested)
            {
                await SendConnectionErrorAsync(ErrorCode.ServerShuttingDown, "the server is stopping").ConfigureAwait(false);
            }
        }
        catch (Exception exception) when (exception is IOException or ConnectionResetException or ConnectionAbortedException)
        {
            LogConnectionLost(_connection.ConnectionId, exception.Message);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // A bug, not the client's doing: this connection ends with a reason, and every other one goes on.
            LogSessionFailed(exception, _connection.ConnectionId);
            await SendConnectionErrorAsync(ErrorCode.Unknown, $"the server failed to handle this connection: {exception.GetType().Name}").ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Called by the <see cref="IdleConnectionMonitor"/>: ends the session when nothing has arrived for the idle timeout
    /// (or no Hello within the handshake timeout). The read loop sees its read cancelled, sends IdleTimeout and closes;
    /// if it is stuck writing to a peer that does not read, the connection is aborted after a grace period.
    /// </summary>
    public void CheckIdle(long now)
    {
        var limit = _handshakeDone ? _options.IdleTimeout : _options.HandshakeTimeout;
        if (_expiry is not null || limit <= TimeSpan.Zero || _time.GetElapsedTime(Volatile.Read(ref _lastActivity), now) < limit)
        {
            return;
        }

        _expiry = _handshakeDone
            ? $"nothing arrived for {limit.TotalSeconds:0.###} s (the idle timeout); send Ping to keep a quiet connection open"
            : $"no Hello within {limit.TotalSeconds:0.###} s (the handshake timeout)";
        _input.CancelPendingRead();
        _ = AbortIfStuckAsync();
    }

    /// <summary>
    /// A subscribed topic was reopened after a storage failure. Its log may have lost records after its last commit
    /// and offsets may be reused, so the subscription cannot simply go on: the connection is closed with
    /// StorageFailure, and the client subscribes again (a durable consumer resumes after its last Commit).
    /// </summary>
    private void OnTopicRetired(string topic)
    {
        if (_topicRetired is not null || _expiry is not null)
        {
            return;
        }

        _topicRetired = $"topic '{topic}' was reopened from its last commit after a storage failure; connect and subscribe again";
        _input.CancelPendingRead();
        _ = AbortIfStuckAsync();
    }

    private async Task AbortIfStuckAsync()
    {
        try
        {
            await Task.Delay(ExpiredSessionGrace, _ended.Token).ConfigureAwait(false);
            _connection.Abort(new ConnectionAbortedException(_expiry ?? _topicRetired ?? "idle timeout"));
        }
        catch (OperationCanceledException)
        {
            // The session ended by itself.
        }
    }

    public async ValueTask DisposeAsync()
    {
        _ended.Cancel();
        await _commitAcknowledgements.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        foreach (var subscription in _subscriptions.Values)
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
        }

        lock (_subscriptions)
        {
            _subscriptions.Clear();
        }

        _replies.Dispose();
        _ended.Dispose();
    }

    private async ValueTask<bool> HandshakeAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (_frames.TryRead(ref buffer, out var frame))
            {
                var handled = frame.Type == FrameType.Hello ? _frames.ReadHello(frame) : default(HelloFrame?);
                _input.AdvanceTo(buffer.Start);
                if (handled is not { } hello)
                {
                    throw new ProtocolViolationException(ErrorCode.ProtocolViolation, $"the first frame must be Hello, not {frame.Type}");
                }

                if (hello.Version != ProtocolVersion.Current)
                {
                    throw new ProtocolViolationException(ErrorCode.UnsupportedVersion, $"protocol version {hello.Version} is not supported; this server speaks version {ProtocolVersion.Current}");
                }

                if (_refusal is { } refusal)
                {
                    await SendConnectionErrorAsync(refusal, $"the server serves its maximum of {_options.MaxConnections} connections; try again later").ConfigureAwait(false);
                    return false;
                }

                if (_authenticator.Authenticate(hello.Token) is not { } grant)
                {
                    var reason = hello.Token is null ? "the Hello carried no token and this server requires one" : "the token is not known to this server";
                    LogAuthenticationFailed(_connection.ConnectionId, _connection.RemoteEndPoint?.ToString(), reason);
                    await SendConnectionErrorAsync(ErrorCode.AuthenticationFailed, $"authentication failed: {reason}").ConfigureAwait(false);
                    return false;
                }

                _grant = grant;
                _producerId = hello.ProducerId;
                if (_authenticator.Required)
                {
                    LogAuthenticated(_connection.ConnectionId, grant.Name);
                }

                FrameWriter.Write(_replies, new HelloFrame(ProtocolVersion.Current, (uint)_options.IdleTimeout.TotalMilliseconds));
                await FlushRepliesAsync(cancellationToken).ConfigureAwait(false);
                Volatile.Write(ref _lastActivity, _time.GetTimestamp());
                _handshakeDone = true;
                return true;
            }

            _input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                return false;
            }
        }
    }

    private async Task ReadLoopAsync(CancellationToken cancellationToken)
    {
        var closeRequested = false;
        while (!closeRequested)
        {
            var result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _lastActivity, _time.GetTimestamp());
            var buffer = result.Buffer;
            var unread = buffer.Length;
            try
            {
                while (_frames.TryRead(ref buffer, out var frame))
                {
                    if (!await HandleAsync(frame, cancellationToken).ConfigureAwait(false))
                    {
                        closeRequested = true;
                        break;
                    }

                    if (_replies.WrittenCount >= ReplyFlushThreshold)
                    {
                        await FlushRepliesAsync(cancellationToken).ConfigureAwait(false);
                    }
                }

                if (result.IsCompleted || result.IsCanceled)
                {
                    closeRequested = true;
                }
            }
            finally
            {
                Volatile.Write(ref _bytesIn, _bytesIn + unread - buffer.Length);
                _input.AdvanceTo(buffer.Start, buffer.End);
            }

            await FlushRepliesAsync(cancellationToken).ConfigureAwait(false);
            AcknowledgeWhenCommitted(cancellationToken);
            StartNewSubscriptions();
        }
    }

    /// <summary>
    /// Hands this read's Always-durability publishes to one task that waits for their topics' commits and then
    /// sends their Acks together. Reading goes on meanwhile, so later publishes join the next group commit.
    /// </summary>
    private void AcknowledgeWhenCommitted(CancellationToken cancellationToken)
    {
        if (_awaitingCommit.Count == 0 && _pendingCreates.Count == 0 && _pendingPongs.Count == 0)
        {
            return;
        }

        var batch = _awaitingCommit.ToArray();
        var creates = _pendingCreates.ToArray();
        var pongs = _pendingPongs.ToArray();
        _awaitingCommit.Clear();
        _pendingCreates.Clear();
        _pendingPongs.Clear();
        Interlocked.Add(ref _publishesAwaitingCommit, batch.Length + creates.Length);
        var previous = _commitAcknowledgements;
        _commitAcknowledgements = SendWhenCommittedAsync(batch, creates, pongs, previous, cancellationToken);
    }

    private async Task SendWhenCommittedAsync(DurableAck[] batch, PendingCreate[] creates, PendingPong[] pongs, Task previous, CancellationToken cancellationToken)
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
            Interlocked.Add(ref _publishesAwaitingCommit, -(batch.Length + creates.Length));
        }
    }

    /// <summary>A Ping read after Commits of durable consumers on Always topics: answered once their positions are on disk.</summary>
    private readonly record struct PendingPong(Task Positions, ulong Nonce);

    /// <summary>A CreateTopic whose topic is being recorded in the catalog: answered when that is on disk, meanwhile reading goes on.</summary>
    private readonly record struct PendingCreate(Task Creating, ulong RequestId);

    /// <summary>An Ack held back until the message it names (for a duplicate, the original) is on disk.</summary>
    private readonly record struct DurableAck(PublishOutcome Outcome, AckFrame Ack);

    /// <summary>Handles one frame; false when the client asked to close.</summary>
    private async ValueTask<bool> HandleAsync(RawFrame frame, CancellationToken cancellationToken)
    {
        switch (frame.Type)
        {
            case FrameType.Publish:
                await HandlePublishAsync(_frames.ReadPublish(frame), cancellationToken).ConfigureAwait(false);
                return true;
            case FrameType.Commit:
                HandleCommit(_frames.ReadCommit(frame));
                return true;
            case FrameType.Subscribe:
                await HandleSubscribeAsync(_frames.ReadSubscribe(frame), cancellationToken).ConfigureAwait(false);
                return true;
            case FrameType.Unsubscribe:
                await HandleUnsubscribeAsync(_frames.ReadUnsubscribe(frame)).ConfigureAwait(false);
                return true;
            case FrameType.CreateTopic:
                await HandleCreateTopicAsync(_frames.ReadCreateTopic(frame), cancellationToken).ConfigureAwait(false);
                return true;
            case FrameType.Close:
                _frames.ReadClose(frame);
                return false;
            case FrameType.Ping:
                HandlePing(_frames.ReadPing(frame).Nonce);
                return true;
            case FrameType.Pong:
                // Any frame is activity; the server sends no Pings, so there is nothing to match it with.
                _frames.ReadPong(frame);
                return true;
            case FrameType.Hello:
                _frames.ReadHello(frame);
                Reply(new ErrorFrame(null, ErrorCode.ProtocolViolation, "Hello was already exchanged on this connection"));
                return true;
            default:
                throw new ProtocolViolationException(ErrorCode.ProtocolViolation, $"{frame.Type} frames are sent by the server, not to it");
        }
    }

    private async ValueTask HandlePublishAsync(PublishFrame publish, CancellationToken cancellationToken)
    {
        Volatile.Write(ref _publishes, _publishes + 1);
        using var activity = Diagnostics.ServerActivities.StartPublish(publish.Topic, publish.Headers);
        try
        {
            if (publish.Key is { Length: var keyLength } && keyLength > _options.MaxKeySize)
            {
                throw new TopicException(ErrorCode.KeyTooLarge, $"key of {keyLength} bytes exceeds the limit of {_options.MaxKeySize}");
            }

            if (publish.Payload.Length > _options.MaxPayloadSize)
            {
                throw new TopicException(ErrorCode.PayloadTooLarge, $"payload of {publish.Payload.Length} bytes exceeds the limit of {_options.MaxPayloadSize}");
            }

            if (publish.Headers.Length > _options.MaxHeadersSize)
            {
                throw new TopicException(ErrorCode.HeadersTooLarge, $"headers of {publish.Headers.Length} bytes exceed the limit of {_options.MaxHeadersSize}");
            }

            var producer = ProducerStamp.None;
            if (publish.ProducerSequence != 0)
            {
                if (_producerId == 0)
                {
                    throw new TopicException(ErrorCode.InvalidArgument,
                        $"producer sequence {publish.ProducerSequence} needs a producer id, and this connection's Hello carried none; send 0 for an ordinary publish");
                }

                producer = new ProducerStamp(_producerId, publish.ProducerSequence);
            }

            if (Volatile.Read(ref _publishesAwaitingCommit) + _awaitingCommit.Count >= _options.MaxPublishesInFlight)
            {
                throw new TopicException(ErrorCode.TooManyPublishesInFlight,
                    $"this connection has {_options.MaxPublishesInFlight} publishes waiting for their commit; wait for their Acks before sending more");
            }

            // The frame reader hands out one string instance per repeated topic name, so this skips the pattern match.
            if (!ReferenceEquals(publish.Topic, _lastPublishAllowed))
            {
                if (!_grant.MayPublish(publish.Topic))
                {
                    throw new TopicException(ErrorCode.NotAuthorized, $"token '{_grant.Name}' may not publish to '{publish.Topic}'");
                }

                _lastPublishAllowed = publish.Topic;
            }

            var topic = await ResolveTopicAsync(publish.Topic, cancellationToken).ConfigureAwait(false);
            var outcome = await topic.PublishAsync(publish.Key, publish.Payload, publish.Headers, producer, cancellationToken).ConfigureAwait(false);
            activity?.SetTag("messaging.message.id", outcome.Sequence);
            activity?.SetTag("zaichik.duplicate", outcome.Duplicate);
            var durable = Topic.IsDurable(outcome);
            if (!durable && topic.Settings.Durability == Durability.Always)
            {
                _awaitingCommit.Add(new DurableAck(outcome, new AckFrame(publish.RequestId, outcome.Sequence, outcome.Duplicate, Durable: true)));
            }
            else
            {
                Reply(new AckFrame(publish.RequestId, outcome.Sequence, outcome.Duplicate, durable));
            }
        }
        catch (TopicException failure)
        {
            _counters.PublishRefused(failure.Code);
            activity?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, failure.Code.ToString());
            Reply(new ErrorFrame(publish.RequestId, failure.Code, failure.Message));
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            _counters.PublishRefused(ErrorCode.StorageFailure);
            LogStorageFailure(exception, publish.Topic);
            Reply(new ErrorFrame(publish.RequestId, ErrorCode.StorageFailure, $"the message was not stored: {exception.Message}"));
        }
    }

    private async ValueTask HandleSubscribeAsync(SubscribeFrame subscribe, CancellationToken cancellationToken)
    {
        try
        {
            if (subscribe.Prefetch < 1 || subscribe.Prefetch > _options.MaxPrefetch)
            {
                throw new TopicException(ErrorCode.InvalidArgument, $"prefetch {subscribe.Prefetch} is outside 1..{_options.MaxPrefetch}");
            }

            if (_subscriptions.ContainsKey(subscribe.Topic))
            {
                throw new TopicException(ErrorCode.AlreadySubscribed, $"this connection already subscribes to '{subscribe.Topic}'");
            }

            if (_subscriptions.Count >= _options.MaxSubscriptionsPerConnection)
            {
                throw new TopicException(ErrorCode.TooManySubscriptions, $"a connection may hold at most {_options.MaxSubscriptionsPerConnection} subscriptions");
            }

            if (subscribe.DurableName is { } name && ConsumerName.Validate(name) is { } problem)
            {
                throw new TopicException(ErrorCode.InvalidArgument, problem);
            }

            if (!_grant.MaySubscribe(subscribe.Topic))
            {
                throw new TopicException(ErrorCode.NotAuthorized, $"token '{_grant.Name}' may not subscribe to '{subscribe.Topic}'");
            }

            var topic = await ResolveTopicAsync(subscribe.Topic, cancellationToken).ConfigureAwait(false);
            var start = await topic.SubscribeAsync(subscribe.From, subscribe.DurableName, cancellationToken).ConfigureAwait(false);
            var subscription = new Subscription(topic, start, (int)subscribe.Prefetch, _window, _writer, _logger, subscribe.DurableName);
            var topicName = topic.Name;
            subscription.WhenTopicRetired(() => OnTopicRetired(topicName));
            lock (_subscriptions)
            {
                _subscriptions.Add(subscribe.Topic, subscription);
            }

            _subscriptionsToStart.Add(subscription);
            Reply(new AckFrame(subscribe.RequestId, subscription.StartSequence, false));
        }
        catch (TopicException failure)
        {
            Reply(new ErrorFrame(subscribe.RequestId, failure.Code, failure.Message));
        }
    }

    private async ValueTask HandleUnsubscribeAsync(UnsubscribeFrame unsubscribe)
    {
        bool removed;
        Subscription? subscription;
        lock (_subscriptions)
        {
            removed = _subscriptions.Remove(unsubscribe.Topic, out subscription);
        }

        if (!removed || subscription is null)
        {
            Reply(new ErrorFrame(unsubscribe.RequestId, ErrorCode.NotSubscribed, $"this connection does not subscribe to '{unsubscribe.Topic}'"));
            return;
        }

        _subscriptionsToStart.Remove(subscription);
        Interlocked.Add(ref _endedMessagesOut, subscription.MessagesOut);
        await subscription.DisposeAsync().ConfigureAwait(false);
        Reply(new AckFrame(unsubscribe.RequestId, null, false));
    }

    private async ValueTask HandleCreateTopicAsync(CreateTopicFrame create, CancellationToken cancellationToken)
    {
        try
        {
            if (!_grant.MayPublish(create.Topic))
            {
                throw new TopicException(ErrorCode.NotAuthorized, $"token '{_grant.Name}' may not create '{create.Topic}' (creating needs publish permission)");
            }

            var creating = _registry.CreateAsync(create.Topic, new TopicSettings(create.RetentionTtlMs, create.CompactionWindowMs, create.Durability, create.CommitIntervalMs), cancellationToken);
            if (!creating.IsCompleted && Volatile.Read(ref _publishesAwaitingCommit) + _pendingCreates.Count < _options.MaxPublishesInFlight)
            {
                // The catalog records creations in groups, one fsync each: reading on lets this connection's next
                // creations join the same group.
                _pendingCreates.Add(new PendingCreate(creating.AsTask(), create.RequestId));
                return;
            }

            await creating.ConfigureAwait(false);
            Reply(new AckFrame(create.RequestId, null, false));
        }
        catch (TopicException failure)
        {
            Reply(new ErrorFrame(create.RequestId, failure.Code, failure.Message));
        }
    }

    /// <summary>
    /// Answers a Ping, which is also how a client learns that its Commits are durable: the Pong is held until every durable
    /// consumer position this connection's Commits moved on an Always topic is fsynced (the topic's next group flush).
    /// </summary>
    private void HandlePing(ulong nonce)
    {
        List<Task>? writing = null;
        foreach (var subscription in _subscriptions.Values)
        {
            if (subscription.DurableName is not null && subscription.WhenPositionDurableAsync() is { IsCompletedSuccessfully: false } pending)
            {
                (writing ??= []).Add(pending);
            }
        }

        if (writing is null)
        {
            FrameWriter.Write(_replies, new PongFrame(nonce));
        }
        else
        {
            _pendingPongs.Add(new PendingPong(Task.WhenAll(writing), nonce));
        }
    }

    private void HandleCommit(CommitFrame commit)
    {
        if (commit.Topic is null)
        {
            foreach (var subscription in _subscriptions.Values)
            {
                subscription.CommitAll();
            }

            return;
        }

        if (_subscriptions.TryGetValue(commit.Topic, out var target))
        {
            target.CommitUpTo(commit.Sequence);
        }
        else
        {
            Reply(new ErrorFrame(null, ErrorCode.NotSubscribed, $"Commit names '{commit.Topic}', which this connection does not subscribe to"));
        }
    }

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

    private async ValueTask FlushRepliesAsync(CancellationToken cancellationToken)
    {
        if (_replies.WrittenCount == 0)
        {
            return;
        }

        try
        {
            await _writer.WriteAsync(_replies.WrittenMemory, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _replies.Reset();
        }
    }

    /// <summary>Sends an Error about the connection itself; the caller then closes it.</summary>
    private async ValueTask SendConnectionErrorAsync(ErrorCode code, string text)
    {
        _replies.Reset();
        FrameWriter.Write(_replies, new ErrorFrame(null, code, text));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            // The last frame: a delivery still in a pump must not follow the reason the connection closes.
            await _writer.WriteAsync(_replies.WrittenMemory, timeout.Token, last: true).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            _replies.Reset();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Connection {ConnectionId} broke the protocol ({Code}): {Reason}")]
    private partial void LogProtocolViolation(string connectionId, ErrorCode code, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Connection {ConnectionId} failed and was closed")]
    private partial void LogSessionFailed(Exception exception, string connectionId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Connection {ConnectionId} closed: {Reason}")]
    private partial void LogExpired(string connectionId, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Connection {ConnectionId} from {Remote} failed authentication: {Reason}")]
    private partial void LogAuthenticationFailed(string connectionId, string? remote, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Connection {ConnectionId} authenticated with token '{TokenName}'")]
    private partial void LogAuthenticated(string connectionId, string tokenName);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Connection {ConnectionId} lost: {Reason}")]
    private partial void LogConnectionLost(string connectionId, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Publish to {Topic} failed in storage")]
    private partial void LogStorageFailure(Exception exception, string topic);
}
