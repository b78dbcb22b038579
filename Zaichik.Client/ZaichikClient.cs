using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net.Sockets;
using Zaichik.Client.Internal;
using Zaichik.Protocol;

namespace Zaichik.Client;

/// <summary>
/// One connection to a Zaichik server. Thread-safe: any number of publishes, subscriptions and commits may run
/// at once from any threads; they share one socket, one batching writer and one read loop.
/// </summary>
public sealed partial class ZaichikClient : IAsyncDisposable
{
    private readonly Stream _stream;
    private readonly PipeReader _input;
    private readonly FrameReader _frames;
    private readonly FrameSender _sender;
    private readonly PendingRequests _requests;
    private readonly ConcurrentDictionary<string, ZaichikSubscription> _subscriptions = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Timer? _timeouts;
    private readonly ITimer? _heartbeat;
    private readonly TimeSpan _pingInterval;
    private int _receivedSinceCheck;
    private int _silentIntervals;
    private ulong _pingNonce;
    private readonly ConcurrentDictionary<ulong, TaskCompletionSource> _confirmations = new();
    private ZaichikServerException? _positionFailure;
    private Task _readLoop = Task.CompletedTask;
    private Func<Exception>? _closed;
    private ZaichikServerException? _lastConnectionError;
    private volatile bool _closing;
    private Task? _disposal;

    private ZaichikClient(string host, int port, ZaichikClientOptions options, Stream stream, PipeReader input, FrameReader frames, HelloFrame serverHello)
    {
        Host = host;
        Port = port;
        Options = options;
        ServerProtocolVersion = serverHello.Version;
        ServerIdleTimeout = serverHello.IdleTimeoutMs == 0 ? null : TimeSpan.FromMilliseconds(serverHello.IdleTimeoutMs);
        _stream = stream;
        _input = input;
        _frames = frames;
        _sender = new FrameSender(stream, options.SendBufferSize);
        _requests = new PendingRequests(options.MaxPendingRequests, options.RequestTimeout);
        if (options.RequestTimeout != Timeout.InfiniteTimeSpan)
        {
            var interval = TimeSpan.FromMilliseconds(Math.Clamp(options.RequestTimeout.TotalMilliseconds / 8, 10, 1000));
            _timeouts = new Timer(static state => ((ZaichikClient)state!).ExpireOverdueRequests(), this, interval, interval);
        }

        _pingInterval = PingIntervalFor(options.PingInterval, ServerIdleTimeout);
        if (_pingInterval != Timeout.InfiniteTimeSpan)
        {
            _heartbeat = options.TimeProvider.CreateTimer(static state => ((ZaichikClient)state!).Heartbeat(), this, _pingInterval, _pingInterval);
        }
    }

    /// <summary>
    /// Raised on the read loop when the server reports an error that belongs to no request (for example a Commit
    /// naming no subscription, or the reason it is about to close the connection). Keep handlers short.
    /// </summary>
    public event EventHandler<ZaichikServerException>? ServerError;

    /// <summary>
    /// Raised once when the connection ends other than by <see cref="DisposeAsync"/>: the server closed it, the
    /// network failed, or the server stopped answering Pings. The argument says why; the same exception fails every
    /// pending request. Raised on a pool thread; keep handlers short.
    /// </summary>
    public event EventHandler<ZaichikConnectionException>? Disconnected;

    /// <summary>The host this client connected to.</summary>
    public string Host { get; }

    /// <summary>The port this client connected to.</summary>
    public int Port { get; }

    /// <summary>The options this client was created with.</summary>
    public ZaichikClientOptions Options { get; }

    /// <summary>The protocol version the server announced in its Hello.</summary>
    public ushort ServerProtocolVersion { get; }

    /// <summary>The idle timeout the server announced: it closes the connection when nothing arrives for this long. Null: none.</summary>
    public TimeSpan? ServerIdleTimeout { get; }

    /// <summary>False once the connection was lost or the client disposed.</summary>
    public bool IsConnected => Volatile.Read(ref _closed) is null && !_closing;

    /// <summary>
    /// Connects to a Zaichik server and performs the Hello handshake.
    /// </summary>
    /// <exception cref="ZaichikConnectionException">The server is unreachable, closed the connection during the handshake, or TLS failed.</exception>
    /// <exception cref="ZaichikServerException">The server refused the connection (for example an unsupported protocol version).</exception>
    public static async ValueTask<ZaichikClient> ConnectAsync(string host, int port, ZaichikClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(host);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        options ??= ZaichikClientOptions.Default;
        options.Validate();

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(options.ConnectTimeout);
        Stream? stream = null;
        try
        {
            await socket.ConnectAsync(host, port, deadline.Token).ConfigureAwait(false);
            stream = new NetworkStream(socket, ownsSocket: true);
            if (options.Tls is { } tls)
            {
                stream = await TlsHandshake.AuthenticateAsync(stream, tls, host, port, options.ConnectTimeout, deadline.Token, cancellationToken).ConfigureAwait(false);
            }

            var input = PipeReader.Create(stream, new StreamPipeReaderOptions(
                bufferSize: options.ReceiveBufferSize, minimumReadSize: Math.Min(4096, options.ReceiveBufferSize), leaveOpen: true));
            var frames = new FrameReader(options.MaxFrameSize);
            var serverHello = await HandshakeAsync(stream, input, frames, options, host, port, deadline.Token).ConfigureAwait(false);

            var client = new ZaichikClient(host, port, options, stream, input, frames, serverHello);
            client.Start();
            return client;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Discard(socket, stream);
            throw new ZaichikConnectionException(
                $"could not connect to Zaichik at {host}:{port}: no answer within {options.ConnectTimeout.TotalSeconds:0.###} s");
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            Discard(socket, stream);
            throw new ZaichikConnectionException($"could not connect to Zaichik at {host}:{port}: {e.Message}", e);
        }
        catch
        {
            Discard(socket, stream);
            throw;
        }
    }

    /// <summary>
    /// Sends Close, waits up to <see cref="ZaichikClientOptions.CloseTimeout"/> for the server to answer what is in
    /// flight and close, then closes the socket. Requests still unanswered fail with
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

    private static async ValueTask<HelloFrame> HandshakeAsync(
        Stream stream, PipeReader input, FrameReader frames, ZaichikClientOptions options, string host, int port, CancellationToken cancellationToken)
    {
        var hello = new ArrayBufferWriter<byte>(64);
        FrameWriter.Write(hello, new HelloFrame(ProtocolVersion.Current, Token: options.Token));
        await stream.WriteAsync(hello.WrittenMemory, cancellationToken).ConfigureAwait(false);

        while (true)
        {
            var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (frames.TryRead(ref buffer, out var frame))
            {
                try
                {
                    switch (frame.Type)
                    {
                        case FrameType.Hello:
                            return frames.ReadHello(frame);
                        case FrameType.Error:
                            var error = frames.ReadError(frame);
                            throw new ZaichikServerException(error.Code, error.Text);
                        default:
                            throw new ZaichikConnectionException(
                                $"could not connect to Zaichik at {host}:{port}: expected Hello, the server sent {frame.Type}");
                    }
                }
                finally
                {
                    input.AdvanceTo(buffer.Start);
                }
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                throw new ZaichikConnectionException(
                    $"could not connect to Zaichik at {host}:{port}: the server closed the connection during the handshake"
                    + (options.Tls is null ? " (a server with TLS on does this to a client without ZaichikClientOptions.Tls)" : ""));
            }
        }
    }

    private static void Discard(Socket socket, Stream? stream)
    {
        if (stream is not null)
        {
            stream.Dispose();
        }
        else
        {
            socket.Dispose();
        }
    }

    private void Start()
    {
        _sender.Start(_stopping.Token);
        _ = _sender.Completion.ContinueWith(
            static (send, state) => ((ZaichikClient)state!).OnConnectionEnded(send.Exception?.GetBaseException()),
            this,
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        _readLoop = Task.Run(ReadLoopAsync);
    }

    private async Task ReadLoopAsync()
    {
        Exception? failure = null;
        try
        {
            while (true)
            {
                var result = await _input.ReadAsync(_stopping.Token).ConfigureAwait(false);
                Volatile.Write(ref _receivedSinceCheck, 1);
                var buffer = result.Buffer;
                try
                {
                    while (_frames.TryRead(ref buffer, out var frame))
                    {
                        Dispatch(frame);
                    }
                }
                finally
                {
                    _input.AdvanceTo(buffer.Start, buffer.End);
                }

                if (result.IsCompleted)
                {
                    if (!buffer.IsEmpty)
                    {
                        failure = new EndOfStreamException($"the connection ended inside a frame ({buffer.Length} bytes left)");
                    }

                    break;
                }
            }
        }
        catch (Exception e)
        {
            failure = e;
        }

        await _input.CompleteAsync().ConfigureAwait(false);
        OnConnectionEnded(failure);
    }

    private void Dispatch(in RawFrame frame)
    {
        switch (frame.Type)
        {
            case FrameType.Ack:
                _requests.TryComplete(_frames.ReadAck(frame));
                break;
            case FrameType.Message:
                var message = _frames.ReadMessage(frame);
                // A message for a topic no longer subscribed here raced the Unsubscribe; it has nowhere to go.
                if (_subscriptions.TryGetValue(message.Topic, out var subscription))
                {
                    subscription.Deliver(ZaichikMessage.CopyOf(message));
                }

                break;
            case FrameType.Error:
                var error = _frames.ReadError(frame);
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

                    _lastConnectionError = exception;
                    RaiseServerError(exception);
                }

                break;
            case FrameType.Ping:
                _sender.Write(new PongFrame(_frames.ReadPing(frame).Nonce));
                break;
            case FrameType.Pong:
                // Whatever arrives proves the server alive; the read itself was counted. A Pong may confirm Commits.
                Confirmed(_frames.ReadPong(frame).Nonce);
                break;
            default:
                throw new ProtocolViolationException(ErrorCode.ProtocolViolation, $"the server sent a {frame.Type} frame, which only clients send");
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

    /// <summary>The configured interval, but at least three Pings per server idle timeout so one lost Ping is not fatal.</summary>
    private static TimeSpan PingIntervalFor(TimeSpan configured, TimeSpan? serverIdleTimeout)
    {
        if (configured == Timeout.InfiniteTimeSpan)
        {
            return configured;
        }

        return serverIdleTimeout is { } idle && idle / 3 < configured
            ? TimeSpan.FromTicks(Math.Max(idle.Ticks / 3, TimeSpan.FromMilliseconds(1).Ticks))
            : configured;
    }

    /// <summary>
    /// Runs every ping interval. Pings when this interval saw nothing sent (so the server's idle timeout does not
    /// close a quiet connection) or nothing received (so a live server has something to answer). Declares the server
    /// dead after <see cref="ZaichikClientOptions.MaxPingsOutstanding"/> + 1 intervals in a row with nothing from it.
    /// </summary>
    private void Heartbeat()
    {
        if (Volatile.Read(ref _closed) is not null || _closing)
        {
            return;
        }

        var received = Interlocked.Exchange(ref _receivedSinceCheck, 0) != 0;
        var silent = received ? 0 : Interlocked.Increment(ref _silentIntervals);
        if (received)
        {
            Volatile.Write(ref _silentIntervals, 0);
        }

        if (silent > Options.MaxPingsOutstanding)
        {
            var silence = _pingInterval * silent;
            var endpoint = $"{Host}:{Port}";
            Terminate(() => new ZaichikConnectionException(
                $"connection to Zaichik at {endpoint} is dead: nothing arrived for {silence.TotalSeconds:0.###} s and {silent - 1} Pings went unanswered"),
                graceful: false);
            return;
        }

        if (!_sender.TakeSentSinceCheck() | !received)
        {
            try
            {
                _sender.Write(new PingFrame(Interlocked.Increment(ref _pingNonce)));
            }
            catch (ZaichikException)
            {
                // Closed meanwhile; whoever closed it reports why.
            }
        }
    }

    private void ExpireOverdueRequests() => _requests.ExpireOverdue(Environment.TickCount64, Options.RequestTimeout);

    private void OnConnectionEnded(Exception? failure)
    {
        var endpoint = $"{Host}:{Port}";
        if (_closing)
        {
            Terminate(ClosedByClient, graceful: true);
            return;
        }

        var serverError = _lastConnectionError;
        string message;
        if (serverError is not null)
        {
            message = $"connection to Zaichik at {endpoint} was closed by the server: {serverError.Message}";
        }
        else if (failure is null)
        {
            message = $"connection to Zaichik at {endpoint} was closed by the server";
        }
        else
        {
            message = $"connection to Zaichik at {endpoint} was lost: {failure.Message}";
        }

        var cause = (Exception?)serverError ?? failure;
        Terminate(() => new ZaichikConnectionException(message, cause), graceful: false);
    }

    private static Exception ClosedByClient() => new ZaichikConnectionException("connection closed");

    /// <summary>
    /// Ends the connection once: refuses new frames, fails pending requests, ends subscriptions (with the error
    /// unless the client closed it), stops both loops and closes the socket. The first caller's reason wins.
    /// </summary>
    private void Terminate(Func<Exception> reason, bool graceful)
    {
        if (Interlocked.CompareExchange(ref _closed, reason, null) is not null)
        {
            return;
        }

        _timeouts?.Dispose();
        _heartbeat?.Dispose();
        _sender.Abort(reason);
        _requests.FailAll(reason);
        FailConfirmations(reason());
        var error = graceful ? null : reason();
        foreach (var subscription in _subscriptions.Values)
        {
            _subscriptions.TryRemove(new KeyValuePair<string, ZaichikSubscription>(subscription.Topic, subscription));
            subscription.Complete(error);
        }

        _stopping.Cancel();
        _stream.Dispose();
        if (!graceful && Disconnected is { } disconnected && error is ZaichikConnectionException lost)
        {
            try
            {
                disconnected(this, lost);
            }
            catch (Exception)
            {
                // A handler's failure must not stop the teardown.
            }
        }
    }

    private async Task CloseAsync()
    {
        _closing = true;
        if (Volatile.Read(ref _closed) is null)
        {
            try
            {
                _sender.Write(default(CloseFrame));
                await _sender.CompleteAsync(ClosedByClient).WaitAsync(Options.CloseTimeout).ConfigureAwait(false);
                // The server answers what it already read, then closes; the read loop ends when it does.
                await _readLoop.WaitAsync(Options.CloseTimeout).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Lost, timed out or already torn down by the read loop: the connection is going away either way,
                // and what is still pending fails below.
            }
        }

        Terminate(ClosedByClient, graceful: true);
        await _readLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _sender.Completion.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
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
