using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using Zaichik.Protocol;

namespace Zaichik.Client.Internal;

/// <summary>
/// One socket to the server: the handshake, the read loop, the batching writer and the heartbeat. A
/// <see cref="ZaichikClient"/> outlives its connections: when one ends it opens the next, and everything that must
/// survive (pending requests, subscriptions) lives in the client. A connection reports each frame it reads and, once,
/// its end to the client.
/// </summary>
internal sealed class ClientConnection
{
    private readonly Stream _stream;
    private readonly PipeReader _input;
    private readonly FrameReader _frames;
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ZaichikClientOptions _options;
    private readonly TimeSpan _pingInterval;
    private ITimer? _heartbeat;
    private ZaichikClient? _owner;
    private int _receivedSinceCheck;
    private int _silentIntervals;
    private int _endedFlag;
    private Exception? _terminatedWith;
    private Task _readLoop = Task.CompletedTask;

    private ClientConnection(ZaichikClientOptions options, Stream stream, PipeReader input, FrameReader frames, HelloFrame serverHello, string endpoint)
    {
        _options = options;
        _stream = stream;
        _input = input;
        _frames = frames;
        Endpoint = endpoint;
        ServerProtocolVersion = serverHello.Version;
        ServerIdleTimeout = serverHello.IdleTimeoutMs == 0 ? null : TimeSpan.FromMilliseconds(serverHello.IdleTimeoutMs);
        Sender = new FrameSender(stream, options.SendBufferSize);
        _pingInterval = PingIntervalFor(options.PingInterval, ServerIdleTimeout);
    }

    public FrameSender Sender { get; }

    public FrameReader Frames => _frames;

    public string Endpoint { get; }

    public ushort ServerProtocolVersion { get; }

    public TimeSpan? ServerIdleTimeout { get; }

    /// <summary>Completes when the read loop has ended (and the end was reported).</summary>
    public Task ReadLoop => _readLoop;

    public bool HasEnded => Volatile.Read(ref _endedFlag) != 0;

    /// <summary>Completes when the connection has ended (<see cref="Terminate"/>), before its end is reported.</summary>
    public Task Ended => _ended.Task;

    /// <summary>The last Error without a request id: the server's reason, if it closes the connection.</summary>
    public ZaichikServerException? LastServerError { get; set; }

    /// <summary>
    /// Set (under the client's admission lock) when a cluster node redirected a request elsewhere or knew no leader: the
    /// connection takes no more requests, is being closed, and this is the reason reported for its end.
    /// </summary>
    public ZaichikConnectionException? Rerouted { get; set; }

    /// <summary>
    /// Set (under the client's admission lock) once the connection was opened to requests. A connection that ends before
    /// is handled by the reconnect loop restoring it; one that ends after starts a new reconnect loop.
    /// </summary>
    public bool Opened { get; set; }

    /// <summary>
    /// Connects to <paramref name="endpoint"/> (or <see cref="ZaichikClientOptions.WebSocketUrl"/> when set), runs TLS
    /// when configured and exchanges Hello. Throws <see cref="ZaichikConnectionException"/> when the server is
    /// unreachable or the handshake fails, <see cref="ZaichikServerException"/> when the server refuses.
    /// </summary>
    /// <remarks>
    /// The Hello announces <see cref="ProtocolVersion.Current"/>; a server answers with the version it speaks from the
    /// supported range. A server that speaks only an older version refuses it (UnsupportedVersion): the client then
    /// connects once more with <see cref="ProtocolVersion.Minimum"/>, whose frames are the same (a version 7 server never
    /// sends what version 8 added).
    /// </remarks>
    public static async ValueTask<ClientConnection> OpenAsync(
        ZaichikClientOptions options, ServerEndpoint endpoint, ulong producerId, CancellationToken cancellationToken)
    {
        try
        {
            return await OpenAsync(options, endpoint, producerId, ProtocolVersion.Current, cancellationToken).ConfigureAwait(false);
        }
        catch (ZaichikServerException e) when (e.Code == ErrorCode.UnsupportedVersion && !e.RefusedByClient && ProtocolVersion.Minimum < ProtocolVersion.Current)
        {
            return await OpenAsync(options, endpoint, producerId, ProtocolVersion.Minimum, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async ValueTask<ClientConnection> OpenAsync(
        ZaichikClientOptions options, ServerEndpoint endpoint, ulong producerId, ushort version, CancellationToken cancellationToken)
    {
        if ((endpoint.WebSocket ?? options.WebSocketUrl) is { } webSocketUrl)
        {
            return await OpenWebSocketAsync(options, webSocketUrl, producerId, version, cancellationToken).ConfigureAwait(false);
        }

        var (host, port, _) = endpoint;
        var name = endpoint.ToString();
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
            var serverHello = await HandshakeAsync(stream, input, frames, options, name, producerId, version, deadline.Token).ConfigureAwait(false);
            return new ClientConnection(options, stream, input, frames, serverHello, name);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Discard(socket, stream);
            throw new ZaichikConnectionException(
                $"could not connect to Zaichik at {name}: no answer within {options.ConnectTimeout.TotalSeconds:0.###} s");
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            Discard(socket, stream);
            throw new ZaichikConnectionException($"could not connect to Zaichik at {name}: {e.Message}", e);
        }
        catch
        {
            Discard(socket, stream);
            throw;
        }
    }

    /// <summary>Starts the writer, the read loop and the heartbeat; frames and the end go to <paramref name="owner"/>.</summary>
    public void Start(ZaichikClient owner)
    {
        _owner = owner;
        Sender.Start(_stopping.Token);
        _ = Sender.Completion.ContinueWith(
            static (send, state) => ((ClientConnection)state!).Terminate(send.Exception!.GetBaseException()),
            this,
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        _readLoop = Task.Run(ReadLoopAsync);
        if (_pingInterval != Timeout.InfiniteTimeSpan)
        {
            _heartbeat = _options.TimeProvider.CreateTimer(static state => ((ClientConnection)state!).Heartbeat(), this, _pingInterval, _pingInterval);
        }
    }

    /// <summary>Ends the connection at once: no more frames go out, the socket closes, the read loop reports the end with <paramref name="failure"/>.</summary>
    public void Terminate(Exception? failure)
    {
        if (Interlocked.Exchange(ref _endedFlag, 1) != 0)
        {
            return;
        }

        _terminatedWith = failure;
        _heartbeat?.Dispose();
        Sender.Abort(failure is null ? ConnectionClosed : () => failure);
        _stopping.Cancel();
        _stream.Dispose();
        _ended.TrySetResult();
    }

    /// <summary>Sends Close and what is pending, and waits up to <paramref name="timeout"/> for the server to close.</summary>
    public async Task CloseAsync(TimeSpan timeout)
    {
        try
        {
            Sender.Write(default(CloseFrame));
            await Sender.CompleteAsync(ConnectionClosed).WaitAsync(timeout).ConfigureAwait(false);
            // The server answers what it already read, then closes; the read loop ends when it does.
            await _readLoop.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Lost, timed out or already torn down: the connection goes away either way.
        }
    }

    /// <summary>Waits for both loops to finish after <see cref="Terminate"/>.</summary>
    public async Task DrainAsync()
    {
        await _readLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await Sender.Completion.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private static Exception ConnectionClosed() => new ZaichikConnectionException("connection closed");

    /// <summary>
    /// Sends Hello with <paramref name="version"/> and reads the server's answer: its Hello, whose version must be one
    /// this client speaks, or an Error (thrown as <see cref="ZaichikServerException"/>).
    /// </summary>
    private static async ValueTask<HelloFrame> HandshakeAsync(
        Stream stream, PipeReader input, FrameReader frames, ZaichikClientOptions options, string endpoint, ulong producerId, ushort version,
        CancellationToken cancellationToken)
    {
        var hello = new ArrayBufferWriter<byte>(64);
        FrameWriter.Write(hello, new HelloFrame(version, Token: options.Token, ProducerId: producerId));
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
                            var serverHello = frames.ReadHello(frame);
                            if (!ProtocolVersion.IsSupported(serverHello.Version))
                            {
                                throw new ZaichikServerException(ErrorCode.UnsupportedVersion,
                                    $"the server at {endpoint} answered with protocol version {serverHello.Version}; this client speaks versions {ProtocolVersion.SupportedRange}")
                                {
                                    RefusedByClient = true,
                                };
                            }

                            return serverHello;
                        case FrameType.Error:
                            var error = frames.ReadError(frame);
                            throw new ZaichikServerException(error.Code, error.Text);
                        default:
                            throw new ZaichikConnectionException(
                                $"could not connect to Zaichik at {endpoint}: expected Hello, the server sent {frame.Type}");
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
                    $"could not connect to Zaichik at {endpoint}: the server closed the connection during the handshake"
                    + (options.Tls is null ? " (a server with TLS on does this to a client without ZaichikClientOptions.Tls)" : ""));
            }
        }
    }

    /// <summary>The WebSocket transport: the same frames in binary WebSocket messages, one message per flush.</summary>
    private static async ValueTask<ClientConnection> OpenWebSocketAsync(ZaichikClientOptions options, Uri url, ulong producerId, ushort version, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(options.ConnectTimeout);
        var socket = new System.Net.WebSockets.ClientWebSocket();
        Stream? stream = null;
        try
        {
            await socket.ConnectAsync(url, deadline.Token).ConfigureAwait(false);
            stream = System.Net.WebSockets.WebSocketStream.Create(socket, System.Net.WebSockets.WebSocketMessageType.Binary, ownsWebSocket: true);
            var input = PipeReader.Create(stream, new StreamPipeReaderOptions(
                bufferSize: options.ReceiveBufferSize, minimumReadSize: Math.Min(4096, options.ReceiveBufferSize), leaveOpen: true));
            var frames = new FrameReader(options.MaxFrameSize);
            var serverHello = await HandshakeAsync(stream, input, frames, options, url.ToString(), producerId, version, deadline.Token).ConfigureAwait(false);
            return new ClientConnection(options, stream, input, frames, serverHello, url.ToString());
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            DiscardWebSocket(socket, stream);
            throw new ZaichikConnectionException($"could not connect to Zaichik at {url}: no answer within {options.ConnectTimeout.TotalSeconds:0.###} s");
        }
        catch (Exception e) when (e is System.Net.WebSockets.WebSocketException or IOException or SocketException)
        {
            DiscardWebSocket(socket, stream);
            throw new ZaichikConnectionException($"could not connect to Zaichik at {url}: {e.Message}", e);
        }
        catch
        {
            DiscardWebSocket(socket, stream);
            throw;
        }
    }

    private static void DiscardWebSocket(System.Net.WebSockets.ClientWebSocket socket, Stream? stream)
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
                        if (frame.Type == FrameType.Ping)
                        {
                            Sender.Write(new PongFrame(_frames.ReadPing(frame).Nonce));
                            continue;
                        }

                        _owner!.Dispatch(this, frame);
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
        // A connection terminated on purpose (a dead heartbeat, a failed send) reports that reason, not the cancelled read.
        Terminate(failure);
        _owner!.OnConnectionEnded(this, _terminatedWith ?? failure);
    }

    /// <summary>
    /// Runs every ping interval. Pings when this interval saw nothing sent (so the server's idle timeout does not
    /// close a quiet connection) or nothing received (so a live server has something to answer). Declares the server
    /// dead after <see cref="ZaichikClientOptions.MaxPingsOutstanding"/> + 1 intervals in a row with nothing from it.
    /// </summary>
    private void Heartbeat()
    {
        if (HasEnded)
        {
            return;
        }

        var received = Interlocked.Exchange(ref _receivedSinceCheck, 0) != 0;
        var silent = received ? 0 : Interlocked.Increment(ref _silentIntervals);
        if (received)
        {
            Volatile.Write(ref _silentIntervals, 0);
        }

        if (silent > _options.MaxPingsOutstanding)
        {
            var silence = _pingInterval * silent;
            Terminate(new ZaichikConnectionException(
                $"connection to Zaichik at {Endpoint} is dead: nothing arrived for {silence.TotalSeconds:0.###} s and {silent - 1} Pings went unanswered"));
            return;
        }

        if (!Sender.TakeSentSinceCheck() | !received)
        {
            try
            {
                Sender.Write(new PingFrame(_owner!.NextPingNonce()));
            }
            catch (ZaichikException)
            {
                // Closed meanwhile; whoever closed it reports why.
            }
        }
    }
}
