using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;
using Zaichik.Server.Requests;
using Zaichik.Server.Sessions.Internal;
using Zaichik.Server.Security;
using Zaichik.Server.Storage;
using Zaichik.Server.Subscriptions;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Sessions;

/// <summary>
/// The session shell of one client connection, whatever transport carries it: the handshake and authentication, then
/// a loop that decodes every frame of each read and dispatches it to the connection's request handlers
/// (<see cref="ConnectionRequests"/>), and sends the replies of the whole read in one flush. Replies are encoded into a
/// private buffer while frames are handled and only then handed to the <see cref="ConnectionWriter"/>, which the
/// subscriptions' pumps share. The <see cref="IdleConnectionMonitor"/> ends a session that has been silent too long by
/// cancelling its pending read. The shell never touches a topic or a log.
/// </summary>
internal sealed partial class ClientSession : IAsyncDisposable
{
    /// <summary>Replies are flushed early when a single read produces more than this.</summary>
    private const int ReplyFlushThreshold = 64 * 1024;

    /// <summary>A read of at least this many bytes is handled on the pool rather than on the socket's thread.</summary>
    private const int PipelinedReadBytes = 4096;

    /// <summary>How long an expired session may take to end by itself before its connection is aborted.</summary>
    private static readonly TimeSpan ExpiredSessionGrace = TimeSpan.FromSeconds(5);

    private readonly ConnectionContext _connection;
    private readonly Cluster.ClusterNode? _cluster;
    private readonly ZaichikServerOptions _options;
    private readonly TokenAuthenticator _authenticator;
    private readonly TimeProvider _time;
    private readonly ErrorCode? _refusal;
    private readonly ILogger _logger;
    private readonly TopicRegistry _registry;
    private readonly Diagnostics.ServerCounters _counters;
    private readonly PipeReader _input;
    private readonly ConnectionWriter _writer;
    private readonly FrameReader _frames;
    private readonly PooledBufferWriter _replies = new();
    private readonly CancellationTokenSource _ended = new();
    private long _lastActivity;
    private volatile bool _handshakeDone;
    private volatile string? _expiry;
    private volatile string? _topicRetired;
    private ErrorCode _endCode = ErrorCode.StorageFailure;
    private long _bytesIn;

    // Set once the Hello is accepted; read by the state model from other threads.
    private volatile ConnectionRequests? _requests;

    /// <param name="refusal">When set, the session answers the Hello with this Error and ends (the server is full).</param>
    public ClientSession(
        ConnectionContext connection,
        TopicRegistry registry,
        ZaichikServerOptions options,
        TokenAuthenticator authenticator,
        TimeProvider time,
        ErrorCode? refusal,
        ILogger logger,
        Diagnostics.ServerCounters? counters = null,
        Cluster.ClusterNode? cluster = null)
    {
        _cluster = cluster;
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
    public int SubscriptionCount => _requests?.SubscriptionCount ?? 0;

    /// <summary>When the connection was accepted.</summary>
    public DateTimeOffset ConnectedAt { get; }

    /// <summary>
    /// The protocol version negotiated in the Hello exchange (the client's, which the server answered with); 0 until then.
    /// A version 7 session is never sent what version 8 added (see <see cref="ConnectionRequests.Version"/>).
    /// </summary>
    public ushort Version { get; private set; }

    /// <summary>
    /// What this connection is doing now, for the broker state model. Safe to call from any thread: the subscriptions
    /// are copied under the lock their changes take, and counters are read as they are.
    /// </summary>
    public State.ConnectionView Describe()
    {
        var requests = _requests;
        var (subscriptions, messagesOut) = requests?.DescribeSubscriptions() ?? ([], 0);
        return new State.ConnectionView(
            _connection.ConnectionId,
            _connection.RemoteEndPoint?.ToString(),
            _authenticator.Required ? requests?.TokenName : null,
            _connection.Features.Get<Microsoft.AspNetCore.Connections.Features.ITlsHandshakeFeature>() is not null,
            ConnectedAt,
            requests is not null,
            requests?.ProducerId ?? 0,
            requests?.Publishes ?? 0,
            Volatile.Read(ref _bytesIn),
            messagesOut,
            _writer.BytesWritten,
            requests?.PublishesInFlight ?? 0,
            subscriptions);
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
                await SendConnectionErrorAsync(_endCode, retired).ConfigureAwait(false);
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
        EndSession(ErrorCode.StorageFailure, $"topic '{topic}' was reopened from its last commit after a storage failure; connect and subscribe again");
    }

    /// <summary>
    /// This cluster node stopped leading: its clients must find the new leader. A version 8 client reconnects and is
    /// redirected; a version 7 one, which cannot follow a Redirect, is told which node leads now when this node knows
    /// its address (NotLeader), and NoLeader otherwise.
    /// </summary>
    private void OnLeadershipLost()
    {
        var cluster = _cluster!;
        if (Version < ProtocolVersion.FirstWithRedirect && cluster.Leader is { } leader && leader.EndpointFor(OverWebSocket) is { } endpoint)
        {
            EndSession(ErrorCode.NotLeader, $"cluster node {cluster.NodeId} no longer leads; node {leader.NodeId} leads now; connect to {endpoint}");
            return;
        }

        EndSession(ErrorCode.NoLeader, $"cluster node {cluster.NodeId} no longer leads; connect again to be sent to the new leader");
    }

    private bool OverWebSocket => _requests?.OverWebSocket ?? false;

    /// <summary>Ends the session from outside its read loop: it sends an Error with <paramref name="code"/> and closes.</summary>
    private void EndSession(ErrorCode code, string reason)
    {
        if (_topicRetired is not null || _expiry is not null)
        {
            return;
        }

        _endCode = code;
        _topicRetired = reason;
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
        if (_cluster is { } cluster)
        {
            cluster.LeadershipLost -= OnLeadershipLost;
        }

        if (_requests is { } requests)
        {
            await requests.DisposeAsync().ConfigureAwait(false);
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

                if (!ProtocolVersion.IsSupported(hello.Version))
                {
                    throw new ProtocolViolationException(ErrorCode.UnsupportedVersion,
                        $"protocol version {hello.Version} is not supported; this server speaks versions {ProtocolVersion.SupportedRange}");
                }

                // The client's version, which the server speaks: it holds for the whole connection.
                Version = hello.Version;

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

                _requests = new ConnectionRequests(_registry, _options, _counters, _logger, grant, hello.ProducerId, _replies, _writer, OnTopicRetired)
                {
                    Cluster = _cluster,
                    OverWebSocket = Transports.WebSocketTransport.IsWebSocket(_connection),
                    Version = Version,
                };
                if (_cluster is { } cluster)
                {
                    cluster.LeadershipLost += OnLeadershipLost;
                }

                if (_authenticator.Required)
                {
                    LogAuthenticated(_connection.ConnectionId, grant.Name);
                }

                FrameWriter.Write(_replies, new HelloFrame(Version, (uint)_options.IdleTimeout.TotalMilliseconds));
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

            // A pipelined read (many frames at once) is handled on the pool, so the socket's thread goes back to
            // receiving the next ones meanwhile; a single request is handled and answered right here (InlineCompletions).
            if (unread >= PipelinedReadBytes && !Thread.CurrentThread.IsThreadPoolThread)
            {
                await Task.Yield();
            }

            // Deliveries of what this read publishes go out from this thread once its replies are sent (TailFeed), unless
            // handling it has to wait: then they go before the wait.
            TailFeed.DeferDispatch();
            try
            {
                while (_frames.TryRead(ref buffer, out var frame))
                {
                    var handling = HandleAsync(frame, cancellationToken);
                    bool open;
                    if (handling.IsCompletedSuccessfully)
                    {
                        open = handling.Result;
                    }
                    else
                    {
                        TailFeed.RunDeferred();
                        open = await handling.ConfigureAwait(false);
                        TailFeed.DeferDispatch();
                    }

                    if (!open)
                    {
                        closeRequested = true;
                        break;
                    }

                    if (_replies.WrittenCount >= ReplyFlushThreshold)
                    {
                        TailFeed.RunDeferred();
                        await FlushRepliesAsync(cancellationToken).ConfigureAwait(false);
                        TailFeed.DeferDispatch();
                    }
                }

                if (result.IsCompleted || result.IsCanceled)
                {
                    closeRequested = true;
                }

                var flushing = FlushRepliesAsync(cancellationToken);
                if (!flushing.IsCompletedSuccessfully)
                {
                    TailFeed.RunDeferred();
                }

                await flushing.ConfigureAwait(false);
            }
            finally
            {
                TailFeed.RunDeferred();
                Volatile.Write(ref _bytesIn, _bytesIn + unread - buffer.Length);
                _input.AdvanceTo(buffer.Start, buffer.End);
            }

            _requests!.AfterRead(cancellationToken);
        }
    }

    /// <summary>Handles one frame; false when the client asked to close.</summary>
    private async ValueTask<bool> HandleAsync(RawFrame frame, CancellationToken cancellationToken)
    {
        var requests = _requests!;
        switch (frame.Type)
        {
            case FrameType.Publish:
                await requests.PublishAsync(_frames.ReadPublish(frame), cancellationToken).ConfigureAwait(false);
                return true;
            case FrameType.Commit:
                requests.Commit(_frames.ReadCommit(frame));
                return true;
            case FrameType.Nack:
                requests.Nack(_frames.ReadNack(frame));
                return true;
            case FrameType.Subscribe:
                await requests.SubscribeAsync(_frames.ReadSubscribe(frame), cancellationToken).ConfigureAwait(false);
                return true;
            case FrameType.Unsubscribe:
                await requests.UnsubscribeAsync(_frames.ReadUnsubscribe(frame)).ConfigureAwait(false);
                return true;
            case FrameType.CreateTopic:
                await requests.CreateTopicAsync(_frames.ReadCreateTopic(frame), cancellationToken).ConfigureAwait(false);
                return true;
            case FrameType.Close:
                _frames.ReadClose(frame);
                return false;
            case FrameType.Ping:
                requests.Ping(_frames.ReadPing(frame).Nonce);
                return true;
            case FrameType.Pong:
                // Any frame is activity; the server sends no Pings, so there is nothing to match it with.
                _frames.ReadPong(frame);
                return true;
            case FrameType.Hello:
                _frames.ReadHello(frame);
                FrameWriter.Write(_replies, new ErrorFrame(null, ErrorCode.ProtocolViolation, "Hello was already exchanged on this connection"));
                return true;
            default:
                throw new ProtocolViolationException(ErrorCode.ProtocolViolation, $"{frame.Type} frames are sent by the server, not to it");
        }
    }

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

}
