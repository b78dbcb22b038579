using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Zaichik.Client.Internal;
using Zaichik.Protocol;

namespace Zaichik.Client;

/// <summary>
/// A client of a Zaichik server. Thread-safe: any number of publishes, subscriptions and commits may run at once from
/// any threads; they share one connection, one batching writer and one read loop. When the connection is lost the
/// client opens another (see <see cref="ZaichikClientOptions.Reconnect"/>): calls made meanwhile wait for it,
/// subscriptions are restored where they left off, and publishes whose Ack was lost are sent again and stored at most
/// once (see <see cref="ZaichikClientOptions.Idempotence"/>).
/// </summary>
public sealed partial class ZaichikClient : IAsyncDisposable
{
    private readonly PendingRequests _requests;
    private readonly ConcurrentDictionary<string, ZaichikSubscription> _subscriptions = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Timer? _timeouts;
    private readonly ILogger _logger;
    private readonly ulong _producerId;
    private readonly ConcurrentDictionary<ulong, TaskCompletionSource> _confirmations = new();
    private ulong _pingNonce;
    private ZaichikServerException? _positionFailure;
    private Func<Exception>? _closed;
    private volatile bool _closing;
    private Task? _disposal;

    private ZaichikClient(ZaichikClientOptions options)
    {
        Options = options;
        _logger = (options.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger<ZaichikClient>();
        _producerId = options.Idempotence ? NewProducerId() : 0;
        InitializeEndpoints();
        _requests = new PendingRequests(options.MaxPendingRequests, options.RequestTimeout);
        if (options.RequestTimeout != Timeout.InfiniteTimeSpan)
        {
            var interval = TimeSpan.FromMilliseconds(Math.Clamp(options.RequestTimeout.TotalMilliseconds / 8, 10, 1000));
            _timeouts = new Timer(static state => ((ZaichikClient)state!).ExpireOverdueRequests(), this, interval, interval);
        }
    }

    /// <summary>
    /// Raised on the read loop when the server reports an error that belongs to no request (for example a Commit
    /// naming no subscription, or the reason it is about to close the connection). Keep handlers short.
    /// </summary>
    public event EventHandler<ZaichikServerException>? ServerError;

    /// <summary>
    /// Raised each time the connection ends other than by <see cref="DisposeAsync"/>: the server closed it, the network
    /// failed, the server stopped answering Pings, or a cluster node turned a request away (see <see cref="Redirected"/>;
    /// the client then connects to the leader whether or not reconnecting is on). The argument says why. With reconnect on, the client then
    /// reconnects (<see cref="Reconnected"/>); with it off, the same exception fails every pending request. Raised on a
    /// pool thread; keep handlers short.
    /// </summary>
    public event EventHandler<ZaichikConnectionException>? Disconnected;

    /// <summary>Raised each time the client has reconnected and restored its subscriptions. Raised on a pool thread.</summary>
    public event EventHandler? Reconnected;

    /// <summary>
    /// Raised when a subscription restored after a reconnect could not resume right after the last message it received,
    /// because the topic no longer holds the messages in between; it names the range missed.
    /// </summary>
    public event EventHandler<ZaichikSubscriptionGap>? SubscriptionGap;

    /// <summary>The host this client connects to first (<see cref="CurrentEndpoint"/> is the server in use).</summary>
    public string Host => Options.Host;

    /// <summary>The port this client connects to first (<see cref="CurrentEndpoint"/> is the server in use).</summary>
    public int Port => Options.Port;

    /// <summary>The options this client was created with.</summary>
    public ZaichikClientOptions Options { get; }

    /// <summary>The protocol version the server announced in its last Hello: the one the connection speaks (7 or 8 for this client).</summary>
    public ushort ServerProtocolVersion { get; private set; }

    /// <summary>The idle timeout the server announced: it closes the connection when nothing arrives for this long. Null: none.</summary>
    public TimeSpan? ServerIdleTimeout { get; private set; }

    /// <summary>Where the connection stands.</summary>
    public ZaichikConnectionState ConnectionState => _state;

    /// <summary>True while connected.</summary>
    public bool IsConnected => _state == ZaichikConnectionState.Connected;

    /// <summary>
    /// Creates a client and returns at once; it connects in the background, retrying as <see cref="ZaichikClientOptions.Reconnect"/>
    /// says, and calls wait for the connection (bounded by <see cref="ZaichikClientOptions.RequestTimeout"/> and their
    /// token). For applications that must start while the server is not up yet, such as a host's singleton.
    /// </summary>
    public static ZaichikClient Create(ZaichikClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var client = new ZaichikClient(options);
        client.StartConnecting(firstAttemptFailure: null);
        return client;
    }

    /// <summary>
    /// Connects to a Zaichik server at <see cref="ZaichikClientOptions.Host"/>:<see cref="ZaichikClientOptions.Port"/> and
    /// performs the Hello handshake. When that server cannot be reached, tries those of
    /// <see cref="ZaichikClientOptions.Servers"/> in turn, once each.
    /// </summary>
    /// <exception cref="ZaichikConnectionException">No server is reachable, or one closed the connection during the handshake, or TLS failed.</exception>
    /// <exception cref="ZaichikServerException">The server refused the connection (for example an unsupported protocol version).</exception>
    public static async ValueTask<ZaichikClient> ConnectAsync(ZaichikClientOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var client = new ZaichikClient(options);
        try
        {
            var connection = await client.OpenFirstAsync(cancellationToken).ConfigureAwait(false);
            client.Adopt(connection);
            client.LogConnected(connection.Endpoint);
            return client;
        }
        catch
        {
            client.Shutdown(() => new ZaichikConnectionException("connection closed"), graceful: true);
            throw;
        }
    }

    /// <summary>Connects to a Zaichik server and performs the Hello handshake. <paramref name="host"/> and <paramref name="port"/> take the place of the options'.</summary>
    /// <exception cref="ZaichikConnectionException">The server is unreachable, closed the connection during the handshake, or TLS failed.</exception>
    /// <exception cref="ZaichikServerException">The server refused the connection (for example an unsupported protocol version).</exception>
    public static ValueTask<ZaichikClient> ConnectAsync(string host, int port, ZaichikClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(host);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        return ConnectAsync((options ?? ZaichikClientOptions.Default) with { Host = host, Port = port }, cancellationToken);
    }

    /// <summary>
    /// Stops reconnecting, sends Close, waits up to <see cref="ZaichikClientOptions.CloseTimeout"/> for the server to
    /// answer what is in flight and close, then closes the socket. Requests still unanswered fail with
    /// <see cref="ZaichikConnectionException"/> ("connection closed"); subscriptions end. Safe to call more than once.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        var disposal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (Interlocked.CompareExchange(ref _disposal, disposal.Task, null) is { } running)
        {
            await running.ConfigureAwait(false);
            return;
        }

        try
        {
            await CloseAsync().ConfigureAwait(false);
        }
        finally
        {
            disposal.SetResult();
        }
    }

    internal ulong NextPingNonce() => Interlocked.Increment(ref _pingNonce);

    /// <summary>The first connection: each endpoint in turn, once, until one answers; throws the failures when none does.</summary>
    private async ValueTask<ClientConnection> OpenFirstAsync(CancellationToken cancellationToken)
    {
        List<string>? failures = null;
        for (var tried = 1; ; tried++)
        {
            var endpoint = TargetEndpoint();
            try
            {
                return await ClientConnection.OpenAsync(Options, endpoint, _producerId, cancellationToken).ConfigureAwait(false);
            }
            catch (ZaichikConnectionException e) when (Options.WebSocketUrl is null && _endpoints.Length > 1)
            {
                EndpointFailed(endpoint);
                LogAttemptFailed(tried, endpoint.ToString(), e.Message);
                (failures ??= []).Add(e.Message);
                if (tried == _endpoints.Length)
                {
                    throw new ZaichikConnectionException(
                        $"could not connect to any of the {_endpoints.Length} Zaichik servers: {string.Join("; ", failures)}", e);
                }
            }
        }
    }

    /// <summary>Handles one frame a connection read (Pings are answered by the connection itself).</summary>
    internal void Dispatch(ClientConnection connection, in RawFrame frame)
    {
        var frames = connection.Frames;
        switch (frame.Type)
        {
            case FrameType.Ack:
                // Ids are unique across connections, so an Ack is never matched to the wrong request.
                if (_requests.TryComplete(frames.ReadAck(frame), out var isInternal) && !isInternal)
                {
                    RequestSucceeded();
                }

                break;
            case FrameType.Message:
                var decoded = frames.ReadMessage(frame);
                // A message for a topic no longer subscribed here raced the Unsubscribe; it has nowhere to go.
                if (_subscriptions.TryGetValue(decoded.Topic, out var subscription))
                {
                    var message = ZaichikMessage.CopyOf(decoded);
                    ZaichikTelemetry.Received(message.Topic);
                    ZaichikTelemetry.RecordReceive(message);
                    if (!subscription.Deliver(message) && subscription.CommittedUpTo >= message.Sequence && subscription.Options.AckPolicy == AckPolicy.Explicit)
                    {
                        // A durable consumer's redelivery of a message the application already committed on the last
                        // connection: commit it again here so the server's window moves on.
                        TryWrite(connection, new CommitFrame(message.Topic, message.Sequence));
                    }
                }

                break;
            case FrameType.Error:
                var error = frames.ReadError(frame);
                if (error.Code == ErrorCode.NoLeader)
                {
                    // A cluster node that knows no leader did not carry the request out: it is sent again elsewhere.
                    OnNoLeader(connection, error.RequestId);
                    break;
                }

                var exception = new ZaichikServerException(error.Code, error.Text);
                if (error.RequestId is { } requestId)
                {
                    _requests.TryFail(requestId, exception);
                }
                else
                {
                    if (error.Code == ErrorCode.CommitNotDurable)
                    {
                        // The server reports Commits it could not write right before the Pong that would have confirmed them.
                        Volatile.Write(ref _positionFailure, exception);
                    }

                    connection.LastServerError = exception;
                    RaiseServerError(exception);
                }

                break;
            case FrameType.Redirect:
                OnRedirect(connection, frames.ReadRedirect(frame));
                break;
            case FrameType.Pong:
                // Whatever arrives proves the server alive; the read itself was counted. A Pong may confirm Commits.
                Confirmed(frames.ReadPong(frame).Nonce);
                break;
            default:
                throw new ProtocolViolationException(ErrorCode.ProtocolViolation, $"the server sent a {frame.Type} frame, which only clients send");
        }
    }

    private static ulong NewProducerId()
    {
        Span<byte> bytes = stackalloc byte[8];
        ulong id;
        do
        {
            RandomNumberGenerator.Fill(bytes);
            id = BitConverter.ToUInt64(bytes);
        }
        while (id == 0);

        return id;
    }

    private static void TryWrite(ClientConnection connection, in CommitFrame frame)
    {
        try
        {
            connection.Sender.Write(frame);
        }
        catch (ZaichikConnectionException)
        {
            // That connection is gone; the next one restores the subscription.
        }
    }

    private void RaiseServerError(ZaichikServerException error)
    {
        try
        {
            ServerError?.Invoke(this, error);
        }
        catch (Exception)
        {
            // A handler's failure must not take down the read loop.
        }
    }

    private void ExpireOverdueRequests() => _requests.ExpireOverdue(Environment.TickCount64, Options.RequestTimeout);

    private static Exception ClosedByClient() => new ZaichikConnectionException("connection closed");

    private async Task CloseAsync()
    {
        _closing = true;
        _stopping.Cancel();
        ClientConnection? connection;
        lock (_admission)
        {
            connection = _current;
        }

        if (connection is not null && !connection.HasEnded)
        {
            await connection.CloseAsync(Options.CloseTimeout).ConfigureAwait(false);
        }

        Shutdown(ClosedByClient, graceful: true);
        if (connection is not null)
        {
            await connection.DrainAsync().ConfigureAwait(false);
        }

        if (_reconnecting is { } reconnecting)
        {
            await reconnecting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>
    /// Ends the client for good, once: refuses new calls, fails pending requests, ends subscriptions (with the error
    /// unless the client closed it), stops the connection. The first caller's reason wins.
    /// </summary>
    private void Shutdown(Func<Exception> reason, bool graceful)
    {
        ClientConnection? connection;
        lock (_admission)
        {
            if (_closed is not null)
            {
                return;
            }

            _closed = reason;
            _state = ZaichikConnectionState.Closed;
            connection = _current;
            _current = null;
            _connection = null;
        }

        _stopping.Cancel();
        _timeouts?.Dispose();
        connection?.Terminate(null);
        _requests.FailAll(reason);
        FailConfirmations(reason());
        OpenGate();
        var error = graceful ? null : reason();
        foreach (var subscription in _subscriptions.Values)
        {
            _subscriptions.TryRemove(new KeyValuePair<string, ZaichikSubscription>(subscription.Topic, subscription));
            subscription.Complete(error);
        }
    }

    private void ThrowIfClosed()
    {
        if (Volatile.Read(ref _closed) is { } closed)
        {
            throw closed();
        }

        if (_closing)
        {
            throw ClosedByClient();
        }
    }
}
