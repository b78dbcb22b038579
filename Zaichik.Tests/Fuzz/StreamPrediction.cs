using System.Buffers;
using Zaichik.Protocol;

namespace Zaichik.Tests.Fuzz;

/// <summary>How the server's reading of a client's byte stream ends.</summary>
internal enum StreamEnd
{
    /// <summary>The bytes end on a frame boundary with no Close: the server waits for more.</summary>
    Open,

    /// <summary>A Close frame: the server answers what came before it and closes.</summary>
    Closed,

    /// <summary>The bytes end inside a frame: the server waits for the rest.</summary>
    Incomplete,

    /// <summary>A frame the server must refuse with a connection-level Error, after which it closes.</summary>
    Fatal,
}

/// <summary>
/// What the server must do with a client's byte stream, worked out from the protocol alone: the framing and decoding
/// of <see cref="FrameReader"/> (the server uses the same codec), the Hello handshake, and which frame types a
/// client may send. It knows nothing of topics, so it predicts how many replies are owed, not which, and how many
/// frames may draw an Error without a request id.
/// </summary>
/// <param name="End">How reading ends.</param>
/// <param name="FatalCode">For <see cref="StreamEnd.Fatal"/>, the code the closing Error must carry.</param>
/// <param name="Requests">Request ids of the requests the server reads before the end, in order (repeats allowed).</param>
/// <param name="ExtraHellos">Hellos after the first, each answered by a ProtocolViolation Error that does not close.</param>
/// <param name="HandshakeDone">Whether the stream's first frame was a valid Hello the server answers with its own.</param>
/// <param name="Unread">Bytes after the frame where the server stops reading (Close or the fatal one).</param>
/// <param name="TopicAcknowledgements">
/// Commits naming a topic (modes 1 and 2) and Nacks the server reads before the end. They have no reply, but each may
/// draw one Error without a request id that leaves the connection open: NotSubscribed for a topic the connection does
/// not subscribe to, InvalidArgument for a subscription it does not fit (a Commit naming a no-ack subscription).
/// </param>
internal sealed record StreamPrediction(
    StreamEnd End, ErrorCode? FatalCode, IReadOnlyList<ulong> Requests, int ExtraHellos, bool HandshakeDone, long Unread, int TopicAcknowledgements)
{
    public static StreamPrediction Of(byte[] stream, int maxFrameSize)
    {
        var reader = new FrameReader(maxFrameSize);
        var buffer = new ReadOnlySequence<byte>(stream);
        var requests = new List<ulong>();
        var extraHellos = 0;
        var topicAcknowledgements = 0;
        var handshakeDone = false;
        while (true)
        {
            RawFrame frame;
            try
            {
                if (!reader.TryRead(ref buffer, out frame))
                {
                    return Ends(buffer.IsEmpty ? StreamEnd.Open : StreamEnd.Incomplete);
                }
            }
            catch (ProtocolViolationException violation)
            {
                return Fails(violation.Code);
            }

            if (!handshakeDone)
            {
                if (frame.Type != FrameType.Hello)
                {
                    return Fails(ErrorCode.ProtocolViolation);
                }

                HelloFrame hello;
                try
                {
                    hello = reader.ReadHello(frame);
                }
                catch (ProtocolViolationException violation)
                {
                    return Fails(violation.Code);
                }

                if (!ProtocolVersion.IsSupported(hello.Version))
                {
                    return Fails(ErrorCode.UnsupportedVersion);
                }

                handshakeDone = true;
                continue;
            }

            if (frame.Type is FrameType.Message or FrameType.Ack or FrameType.Error or FrameType.Redirect)
            {
                return Fails(ErrorCode.ProtocolViolation);
            }

            ulong? requestId;
            try
            {
                FuzzCorpus.DecodeAndReencode(reader, frame, out requestId);
            }
            catch (ProtocolViolationException violation)
            {
                return Fails(violation.Code);
            }

            switch (frame.Type)
            {
                case FrameType.Close:
                    return Ends(StreamEnd.Closed);
                case FrameType.Hello:
                    extraHellos++;
                    break;
                case FrameType.Nack:
                case FrameType.Commit when frame.Body.Span[0] != 0:
                    topicAcknowledgements++;
                    break;
            }

            if (requestId is { } id)
            {
                requests.Add(id);
            }
        }

        StreamPrediction Ends(StreamEnd end) =>
            new(end, null, requests, extraHellos, handshakeDone, end == StreamEnd.Closed ? buffer.Length : 0, topicAcknowledgements);

        // Approximate (the failing frame itself may or may not have been read whole); only compared with 0.
        StreamPrediction Fails(ErrorCode code) => new(StreamEnd.Fatal, code, requests, extraHellos, handshakeDone, buffer.Length, topicAcknowledgements);
    }

    /// <summary>Whether the server closes the connection by itself; otherwise the client must end its side.</summary>
    public bool ServerCloses => End is StreamEnd.Closed or StreamEnd.Fatal;

    /// <summary>
    /// Whether the server may close with bytes of ours unread, so that our send fails or the kernel answers the close
    /// with a reset that can swallow what the server sent last.
    /// </summary>
    public bool MayReset => End == StreamEnd.Fatal || (End == StreamEnd.Closed && Unread > 0);
}
