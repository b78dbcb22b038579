using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Zaichik.Protocol;

namespace Zaichik.Tests.Client;

/// <summary>
/// A scripted Zaichik server on a loopback port for client tests: it accepts connections, performs (or refuses)
/// the Hello handshake, and lets the test read the frames the client sent and answer with any frame it likes.
/// </summary>
internal sealed class FakeServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<FakeConnection> _connections = [];

    /// <param name="refuseHello">Answer every Hello with this Error and drop the connection.</param>
    /// <param name="idleTimeoutMs">The idle timeout the server's Hello announces.</param>
    /// <param name="answerVersion">The version the server's Hello announces; by default the client's.</param>
    /// <param name="onlyVersion">
    /// A server that speaks only this version, as a server older than the client does: a Hello of another version gets
    /// UnsupportedVersion and the connection is dropped (then <see cref="AcceptAsync"/> returns that connection).
    /// </param>
    public FakeServer(ErrorFrame? refuseHello = null, uint idleTimeoutMs = 0, ushort? answerVersion = null, ushort? onlyVersion = null)
    {
        RefuseHello = refuseHello;
        IdleTimeoutMs = idleTimeoutMs;
        AnswerVersion = answerVersion;
        OnlyVersion = onlyVersion;
        _listener.Start();
    }

    public ushort? AnswerVersion { get; }

    public ushort? OnlyVersion { get; }

    public uint IdleTimeoutMs { get; }

    /// <summary>The Hello the last accepted client sent.</summary>
    public HelloFrame? LastClientHello { get; private set; }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public ErrorFrame? RefuseHello { get; }

    /// <summary>Accepts the next connection and completes its handshake (or refusal).</summary>
    public async Task<FakeConnection> AcceptAsync()
    {
        var socket = await _listener.AcceptSocketAsync().WaitAsync(TimeSpan.FromSeconds(10));
        var connection = new FakeConnection(socket);
        _connections.Add(connection);
        var hello = await connection.ReceiveAsync<HelloFrame>();
        LastClientHello = hello;
        if (OnlyVersion is { } only && hello.Version != only)
        {
            await connection.SendAsync(new ErrorFrame(null, ErrorCode.UnsupportedVersion, $"protocol version {hello.Version} is not supported; this server speaks version {only}"));
            connection.Drop();
            return connection;
        }

        if (OnlyVersion is null && RefuseHello is null)
        {
            hello.Version.ShouldBe(ProtocolVersion.Current, "the client should announce the current protocol version");
        }

        if (RefuseHello is { } refusal)
        {
            await connection.SendAsync(refusal);
            connection.Drop();
        }
        else
        {
            await connection.SendAsync(new HelloFrame(AnswerVersion ?? hello.Version, IdleTimeoutMs));
        }

        return connection;
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        foreach (var connection in _connections)
        {
            await connection.DisposeAsync();
        }
    }
}

/// <summary>The server side of one client connection.</summary>
internal sealed class FakeConnection : IAsyncDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly Channel<object> _received = Channel.CreateUnbounded<object>();
    private readonly Task _readLoop;

    public FakeConnection(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _readLoop = Task.Run(ReadLoopAsync);
    }

    /// <summary>Completes when the client closed its side (or the connection was dropped).</summary>
    public Task Closed => _readLoop;

    /// <summary>The next frame the client sent, decoded, with key and payload copied.</summary>
    public async Task<object> ReceiveAsync()
    {
        try
        {
            return await _received.Reader.ReadAsync().AsTask().WaitAsync(Patience);
        }
        catch (ChannelClosedException)
        {
            throw new ShouldAssertException("the client closed the connection instead of sending another frame");
        }
    }

    /// <summary>The next frame the client sent, which must be a <typeparamref name="TFrame"/>.</summary>
    public async Task<TFrame> ReceiveAsync<TFrame>()
    {
        var frame = await ReceiveAsync();
        return frame.ShouldBeOfType<TFrame>();
    }

    /// <summary>True when the client sends no further frame within <paramref name="wait"/>.</summary>
    public async Task<bool> SendsNothingWithinAsync(TimeSpan wait)
    {
        using var timeout = new CancellationTokenSource(wait);
        try
        {
            await _received.Reader.WaitToReadAsync(timeout.Token);
            return !_received.Reader.TryPeek(out _);
        }
        catch (OperationCanceledException)
        {
            return true;
        }
    }

    public Task SendAsync(HelloFrame frame) => SendAsync(output => FrameWriter.Write(output, frame));

    public Task SendAsync(AckFrame frame) => SendAsync(output => FrameWriter.Write(output, frame));

    public Task SendAsync(ErrorFrame frame) => SendAsync(output => FrameWriter.Write(output, frame));

    public Task SendAsync(MessageFrame frame) => SendAsync(output => FrameWriter.Write(output, frame));

    public Task SendAsync(PingFrame frame) => SendAsync(output => FrameWriter.Write(output, frame));

    public Task SendAsync(PongFrame frame) => SendAsync(output => FrameWriter.Write(output, frame));

    /// <summary>Sends many Acks in one write.</summary>
    public Task SendAsync(IEnumerable<AckFrame> frames) => SendAsync(output =>
    {
        foreach (var frame in frames)
        {
            FrameWriter.Write(output, frame);
        }
    });

    /// <summary>Closes the socket at once, as a crashed server would.</summary>
    public void Drop()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already dropped, or reset by the client.
        }

        _stream.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        Drop();
        await _readLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _writeLock.Dispose();
    }

    private async Task SendAsync(Action<ArrayBufferWriter<byte>> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(buffer);
        await _writeLock.WaitAsync(Patience);
        try
        {
            await _stream.WriteAsync(buffer.WrittenMemory);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task ReadLoopAsync()
    {
        var input = PipeReader.Create(_stream, new StreamPipeReaderOptions(leaveOpen: true));
        var frames = new FrameReader();
        try
        {
            while (true)
            {
                var result = await input.ReadAsync();
                var buffer = result.Buffer;
                while (frames.TryRead(ref buffer, out var frame))
                {
                    _received.Writer.TryWrite(Decode(frames, frame));
                }

                input.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException)
        {
            // Dropped by the test or reset by the client: the connection is over either way.
        }
        finally
        {
            _received.Writer.TryComplete();
            await input.CompleteAsync();
        }
    }

    private static object Decode(FrameReader frames, in RawFrame frame) => frame.Type switch
    {
        FrameType.Hello => frames.ReadHello(frame),
        FrameType.CreateTopic => frames.ReadCreateTopic(frame),
        FrameType.Publish => Copy(frames.ReadPublish(frame)),
        FrameType.Subscribe => frames.ReadSubscribe(frame),
        FrameType.Unsubscribe => frames.ReadUnsubscribe(frame),
        FrameType.Commit => frames.ReadCommit(frame),
        FrameType.Nack => frames.ReadNack(frame),
        FrameType.Close => frames.ReadClose(frame),
        FrameType.Ping => frames.ReadPing(frame),
        FrameType.Pong => frames.ReadPong(frame),
        _ => throw new InvalidDataException($"a client does not send {frame.Type}"),
    };

    private static PublishFrame Copy(PublishFrame frame) =>
        // Not `frame.Key?.ToArray()`: a null array converts to an empty key, so every unkeyed publish would look keyed.
        frame with { Key = frame.Key is { } key ? new ReadOnlyMemory<byte>(key.ToArray()) : (ReadOnlyMemory<byte>?)null, Payload = frame.Payload.ToArray(), Headers = frame.Headers.ToArray() };
}
