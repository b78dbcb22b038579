using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using Zaichik.Protocol;

namespace Zaichik.Tests.EndToEnd;

/// <summary>A bare socket speaking frames, for sending what the real client never would.</summary>
internal sealed class RawConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _input;
    private readonly FrameReader _frames = new();

    private RawConnection(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _input = PipeReader.Create(_stream);
    }

    /// <param name="producerId">The producer id the Hello announces: non-zero makes the connection an idempotent producer.</param>
    /// <param name="version">The protocol version the Hello announces; the server must answer with the same.</param>
    public static async Task<RawConnection> ConnectAsync(int port, bool hello = true, string? token = null, ulong producerId = 0, ushort version = ProtocolVersion.Current)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync("127.0.0.1", port);
        var connection = new RawConnection(socket);
        if (hello)
        {
            await connection.SendAsync(writer => FrameWriter.Write(writer, new HelloFrame(version, Token: token, ProducerId: producerId)));
            (await connection.ReceiveHelloAsync()).Version.ShouldBe(version, "the server answers Hello with the version the client announced");
        }

        return connection;
    }

    /// <summary>The next frame, which must be the server's Hello; fails after 10 s.</summary>
    public Task<HelloFrame> ReceiveHelloAsync() =>
        ReceiveAsync(frame =>
        {
            frame.Type.ShouldBe(FrameType.Hello, frame.Type == FrameType.Error ? _frames.ReadError(frame).Text : null);
            return _frames.ReadHello(frame);
        });

    public async Task SendAsync(Action<IBufferWriter<byte>> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(buffer);
        await SendBytesAsync(buffer.WrittenMemory);
    }

    public async Task SendBytesAsync(ReadOnlyMemory<byte> bytes) => await _stream.WriteAsync(bytes);

    /// <summary>The next frame, decoded to (type, error if it is one, ack if it is one); fails after 10 s.</summary>
    public Task<(FrameType Type, ErrorFrame? Error, AckFrame? Ack)> ReceiveAsync() =>
        ReceiveAsync(frame => (frame.Type,
            frame.Type == FrameType.Error ? _frames.ReadError(frame) : (ErrorFrame?)null,
            frame.Type == FrameType.Ack ? _frames.ReadAck(frame) : (AckFrame?)null));

    /// <summary>The next frame, which must be a Redirect (a cluster node that does not lead); fails after 10 s.</summary>
    public Task<RedirectFrame> ReceiveRedirectAsync() =>
        ReceiveAsync(frame =>
        {
            frame.Type.ShouldBe(FrameType.Redirect, frame.Type == FrameType.Error ? _frames.ReadError(frame).Text : null);
            return _frames.ReadRedirect(frame);
        });

    /// <summary>Reads until one whole frame is buffered and returns what <paramref name="decode"/> makes of it; fails after 10 s.</summary>
    private async Task<T> ReceiveAsync<T>(Func<RawFrame, T> decode)
    {
        using var timeout = new CancellationTokenSource(MessageReader.Deadline);
        while (true)
        {
            var result = await _input.ReadAsync(timeout.Token);
            var buffer = result.Buffer;
            if (_frames.TryRead(ref buffer, out var frame))
            {
                var decoded = decode(frame);
                _input.AdvanceTo(buffer.Start);
                return decoded;
            }

            _input.AdvanceTo(buffer.Start, buffer.End);
            result.IsCompleted.ShouldBeFalse("the server closed the connection instead of answering");
        }
    }

    /// <summary>Sends <paramref name="publish"/> and returns its reply: the Ack, or the Error (the Ack is then null).</summary>
    public async Task<(AckFrame? Ack, ErrorFrame? Error)> PublishAsync(PublishFrame publish)
    {
        await SendAsync(writer => FrameWriter.Write(writer, publish));
        var (type, error, ack) = await ReceiveAsync();
        type.ShouldBeOneOf([FrameType.Ack, FrameType.Error], $"the reply to Publish {publish.RequestId}");
        (ack?.RequestId ?? error?.RequestId).ShouldBe(publish.RequestId);
        return (ack, error);
    }

    /// <summary>The next frame, which must be a Message; its fields are copied out of the read buffer. Fails after 10 s.</summary>
    public async Task<MessageFrame> ReceiveMessageAsync()
    {
        using var timeout = new CancellationTokenSource(MessageReader.Deadline);
        while (true)
        {
            var result = await _input.ReadAsync(timeout.Token);
            var buffer = result.Buffer;
            if (_frames.TryRead(ref buffer, out var frame))
            {
                frame.Type.ShouldBe(FrameType.Message, frame.Type == FrameType.Error ? $"{_frames.ReadError(frame)}" : "expected a Message");
                var message = _frames.ReadMessage(frame);
                var copy = message with
                {
                    // Not `message.Key?.ToArray()`: a null array converts to an empty key, not to none.
                    Key = message.Key is { } key ? new ReadOnlyMemory<byte>(key.ToArray()) : (ReadOnlyMemory<byte>?)null,
                    Payload = message.Payload.ToArray(),
                    Headers = message.Headers.ToArray(),
                };
                _input.AdvanceTo(buffer.Start);
                return copy;
            }

            _input.AdvanceTo(buffer.Start, buffer.End);
            result.IsCompleted.ShouldBeFalse("the server closed the connection instead of delivering");
        }
    }

    /// <summary>Every frame until the server closes the connection (type, and the Error when it is one); fails after 10 s.</summary>
    public async Task<List<(FrameType Type, ErrorFrame? Error)>> ReceiveUntilClosedAsync()
    {
        var frames = new List<(FrameType, ErrorFrame?)>();
        using var timeout = new CancellationTokenSource(MessageReader.Deadline);
        while (true)
        {
            ReadResult result;
            try
            {
                result = await _input.ReadAsync(timeout.Token);
            }
            catch (IOException)
            {
                return frames;
            }

            var buffer = result.Buffer;
            while (_frames.TryRead(ref buffer, out var frame))
            {
                frames.Add((frame.Type, frame.Type == FrameType.Error ? _frames.ReadError(frame) : null));
            }

            _input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                return frames;
            }
        }
    }

    /// <summary>Completes when the server has closed the connection; fails after 10 s.</summary>
    public async Task ShouldBeClosedByServerAsync()
    {
        using var timeout = new CancellationTokenSource(MessageReader.Deadline);
        while (true)
        {
            ReadResult result;
            try
            {
                result = await _input.ReadAsync(timeout.Token);
            }
            catch (IOException)
            {
                return;
            }

            _input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _input.CompleteAsync();
        await _stream.DisposeAsync();
        _socket.Dispose();
    }
}
