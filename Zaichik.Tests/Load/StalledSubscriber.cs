using System.Buffers;
using System.Net.Sockets;
using Zaichik.Protocol;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Load;

/// <summary>Subscribers that stop reading, for tests of what the broker holds for them.</summary>
internal static class StalledSubscriber
{
    /// <summary>
    /// A raw connection that subscribes and then never reads again. Its receive buffer is small, so the broker meets a
    /// full socket early instead of the kernel absorbing megabytes.
    /// </summary>
    public static async Task<Socket> ConnectAsync(int port, string topic, int prefetch, AckPolicy ackPolicy = AckPolicy.Explicit)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveBufferSize = 4096 };
        await socket.ConnectAsync("127.0.0.1", port);
        var request = new ArrayBufferWriter<byte>();
        FrameWriter.Write(request, new HelloFrame(ProtocolVersion.Current));
        FrameWriter.Write(request, new SubscribeFrame(1, topic, StartPosition.Latest, (uint)prefetch, null, ackPolicy));
        await socket.SendAsync(request.WrittenMemory, SocketFlags.None);

        // One byte at a time up to the Subscribe's Ack, so not a byte of any later Message is read.
        var reader = new FrameReader();
        var received = new List<byte>();
        var oneByte = new byte[1];
        using var deadline = new CancellationTokenSource(MessageReader.Deadline);
        while (true)
        {
            (await socket.ReceiveAsync(oneByte, SocketFlags.None, deadline.Token)).ShouldBe(1, "the broker closed the connection");
            received.Add(oneByte[0]);
            var buffer = new ReadOnlySequence<byte>(received.ToArray());
            if (reader.TryRead(ref buffer, out var frame))
            {
                received.Clear();
                if (frame.Type == FrameType.Ack)
                {
                    reader.ReadAck(frame).RequestId.ShouldBe(1UL);
                    return socket;
                }

                frame.Type.ShouldBe(FrameType.Hello);
            }
        }
    }
}
