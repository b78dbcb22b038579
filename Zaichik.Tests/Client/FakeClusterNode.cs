using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Zaichik.Protocol;

namespace Zaichik.Tests.Client;

/// <summary>
/// A cluster node that leads nothing, on a loopback port: it exchanges Hello like a server, then answers every request
/// with a Redirect to <see cref="RedirectTo"/> (after answering the first <c>noLeaderFirst</c> ones with a NoLeader
/// Error), Commits and Nacks with a Redirect without request id, Pings with Pongs, and Close by closing, as a real node
/// does once it has answered what it read.
/// </summary>
internal sealed class FakeClusterNode : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _sessions = [];
    private readonly Task _accepting;
    private int _noLeaderLeft;
    private int _connections;
    private int _requests;
    private int _noLeaderAnswers;
    private volatile string _redirectTo;

    public FakeClusterNode(string nodeId, string redirectTo, int noLeaderFirst = 0)
    {
        NodeId = nodeId;
        _redirectTo = redirectTo;
        _noLeaderLeft = noLeaderFirst;
        _listener.Start();
        _accepting = Task.Run(AcceptLoopAsync);
    }

    public string NodeId { get; }

    /// <summary>The <c>host:port</c> every Redirect names.</summary>
    public string RedirectTo
    {
        get => _redirectTo;
        set => _redirectTo = value;
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public string Endpoint => $"127.0.0.1:{Port}";

    /// <summary>Connections accepted so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Requests (and Commits, Nacks) answered so far.</summary>
    public int Requests => Volatile.Read(ref _requests);

    public int NoLeaderAnswers => Volatile.Read(ref _noLeaderAnswers);

    /// <summary>When set, each answer is sent on its own, this long after the previous one: a slow node, whose answers trickle in.</summary>
    public TimeSpan ReplyPause { get; init; }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        _listener.Stop();
        await _accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        Task[] sessions;
        lock (_sessions)
        {
            sessions = [.. _sessions];
        }

        await Task.WhenAll(sessions).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stopping.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stopping.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref _connections);
            lock (_sessions)
            {
                _sessions.Add(Task.Run(() => ServeAsync(socket)));
            }
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        var stream = new NetworkStream(socket, ownsSocket: true);
        var input = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
        var frames = new FrameReader();
        var replies = new ArrayBufferWriter<byte>();
        try
        {
            var closing = false;
            while (!closing)
            {
                var result = await input.ReadAsync(_stopping.Token);
                var buffer = result.Buffer;
                while (!closing && frames.TryRead(ref buffer, out var frame))
                {
                    closing = !Answer(frames, frame, replies);
                    if (ReplyPause > TimeSpan.Zero && replies.WrittenCount > 0)
                    {
                        await stream.WriteAsync(replies.WrittenMemory, _stopping.Token);
                        replies.ResetWrittenCount();
                        await Task.Delay(ReplyPause, _stopping.Token);
                    }
                }

                input.AdvanceTo(buffer.Start, buffer.End);
                if (replies.WrittenCount > 0)
                {
                    await stream.WriteAsync(replies.WrittenMemory, _stopping.Token);
                    replies.ResetWrittenCount();
                }

                closing |= result.IsCompleted;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away, or the node is stopping.
        }
        finally
        {
            await input.CompleteAsync();
            await stream.DisposeAsync();
        }
    }

    /// <summary>Writes the answer to one frame; false when the connection is to close (the client sent Close).</summary>
    private bool Answer(FrameReader frames, in RawFrame frame, ArrayBufferWriter<byte> replies)
    {
        switch (frame.Type)
        {
            case FrameType.Hello:
                frames.ReadHello(frame);
                FrameWriter.Write(replies, new HelloFrame(ProtocolVersion.Current));
                break;
            case FrameType.Publish:
                var publish = frames.ReadPublish(frame);
                Refuse(replies, publish.RequestId, publish.Topic);
                break;
            case FrameType.CreateTopic:
                var create = frames.ReadCreateTopic(frame);
                Refuse(replies, create.RequestId, create.Topic);
                break;
            case FrameType.Subscribe:
                var subscribe = frames.ReadSubscribe(frame);
                Refuse(replies, subscribe.RequestId, subscribe.Topic);
                break;
            case FrameType.Unsubscribe:
                var unsubscribe = frames.ReadUnsubscribe(frame);
                Refuse(replies, unsubscribe.RequestId, unsubscribe.Topic);
                break;
            case FrameType.Commit:
                Refuse(replies, null, frames.ReadCommit(frame).Topic ?? string.Empty);
                break;
            case FrameType.Nack:
                Refuse(replies, null, frames.ReadNack(frame).Topic);
                break;
            case FrameType.Ping:
                FrameWriter.Write(replies, new PongFrame(frames.ReadPing(frame).Nonce));
                break;
            case FrameType.Close:
                return false;
            default:
                // Pongs need no answer.
                break;
        }

        return true;
    }

    private void Refuse(ArrayBufferWriter<byte> replies, ulong? requestId, string topic)
    {
        Interlocked.Increment(ref _requests);
        if (Interlocked.Decrement(ref _noLeaderLeft) >= 0)
        {
            Interlocked.Increment(ref _noLeaderAnswers);
            FrameWriter.Write(replies, new ErrorFrame(requestId, ErrorCode.NoLeader, "no leader is known for this topic now"));
        }
        else
        {
            FrameWriter.Write(replies, new RedirectFrame(requestId, topic, "leader", _redirectTo));
        }
    }
}
