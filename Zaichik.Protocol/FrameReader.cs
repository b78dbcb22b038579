using System.Buffers;
using System.Buffers.Binary;
using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>
/// Splits a byte stream into frames and decodes them. One instance per connection: it owns a scratch buffer
/// for frames that straddle buffer segments and a small cache of recently decoded topic names. Not thread-safe.
/// </summary>
public sealed class FrameReader
{
    /// <summary>Largest scratch buffer kept between frames.</summary>
    private const int ScratchKeepLimit = 64 * 1024;

    private readonly Utf8StringCache _strings = new();
    private byte[] _scratch = [];

    /// <summary>Creates a reader that rejects frames whose body exceeds <paramref name="maxFrameSize"/> bytes.</summary>
    public FrameReader(int maxFrameSize = ProtocolLimits.DefaultMaxFrameSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxFrameSize, 16);
        MaxFrameSize = maxFrameSize;
    }

    /// <summary>The largest frame body (type byte and fields) this reader accepts.</summary>
    public int MaxFrameSize { get; }

    /// <summary>Bytes of scratch buffer held now (for tests of memory use).</summary>
    internal int ScratchCapacity => _scratch.Length;

    /// <summary>
    /// Takes one whole frame off the front of <paramref name="buffer"/>. Returns false, consuming nothing, when the
    /// buffer does not yet hold a whole frame. Throws <see cref="ProtocolViolationException"/> when the length is
    /// zero or above the limit, or the type is unknown.
    /// </summary>
    public bool TryRead(ref ReadOnlySequence<byte> buffer, out RawFrame frame)
    {
        frame = default;

        // The previous frame's body is no longer valid; a large scratch buffer is not kept for the life of the
        // connection, or every connection that once received a large straddling frame would hold one.
        if (_scratch.Length > ScratchKeepLimit)
        {
            _scratch = [];
        }

        if (buffer.Length < ProtocolLimits.LengthPrefixSize)
        {
            return false;
        }

        var length = ReadLength(buffer);
        if (length == 0)
        {
            throw new ProtocolViolationException(ErrorCode.MalformedFrame, "frame length is 0; a frame holds at least its type byte");
        }

        if (length > (uint)MaxFrameSize)
        {
            throw new ProtocolViolationException(ErrorCode.FrameTooLarge, $"frame of {length} bytes exceeds the limit of {MaxFrameSize} bytes");
        }

        if (buffer.Length < ProtocolLimits.LengthPrefixSize + length)
        {
            return false;
        }

        var framed = buffer.Slice(ProtocolLimits.LengthPrefixSize, length);
        ReadOnlyMemory<byte> bytes;
        if (framed.IsSingleSegment)
        {
            bytes = framed.First;
        }
        else
        {
            if (_scratch.Length < length)
            {
                _scratch = new byte[Math.Max((int)length, Math.Min(MaxFrameSize, _scratch.Length * 2))];
            }

            framed.CopyTo(_scratch);
            bytes = _scratch.AsMemory(0, (int)length);
        }

        var type = (FrameType)bytes.Span[0];
        if (!Enum.IsDefined(type))
        {
            throw new ProtocolViolationException(ErrorCode.MalformedFrame, $"unknown frame type 0x{(byte)type:X2}");
        }

        frame = new RawFrame(type, bytes[1..]);
        buffer = buffer.Slice(framed.End);
        return true;
    }

    /// <summary>Decodes a Hello frame.</summary>
    public HelloFrame ReadHello(in RawFrame frame) => Decode<HelloFrame>(frame);

    /// <summary>Decodes a CreateTopic frame.</summary>
    public CreateTopicFrame ReadCreateTopic(in RawFrame frame) => Decode<CreateTopicFrame>(frame);

    /// <summary>Decodes a Publish frame; its key and payload point into the input.</summary>
    public PublishFrame ReadPublish(in RawFrame frame) => Decode<PublishFrame>(frame);

    /// <summary>Decodes a Subscribe frame.</summary>
    public SubscribeFrame ReadSubscribe(in RawFrame frame) => Decode<SubscribeFrame>(frame);

    /// <summary>Decodes an Unsubscribe frame.</summary>
    public UnsubscribeFrame ReadUnsubscribe(in RawFrame frame) => Decode<UnsubscribeFrame>(frame);

    /// <summary>Decodes a Commit frame.</summary>
    public CommitFrame ReadCommit(in RawFrame frame) => Decode<CommitFrame>(frame);

    /// <summary>Decodes a Nack frame.</summary>
    public NackFrame ReadNack(in RawFrame frame) => Decode<NackFrame>(frame);

    /// <summary>Decodes a Close frame.</summary>
    public CloseFrame ReadClose(in RawFrame frame) => Decode<CloseFrame>(frame);

    /// <summary>Decodes a Ping frame.</summary>
    public PingFrame ReadPing(in RawFrame frame) => Decode<PingFrame>(frame);

    /// <summary>Decodes a Pong frame.</summary>
    public PongFrame ReadPong(in RawFrame frame) => Decode<PongFrame>(frame);

    /// <summary>Decodes a Message frame; its key and payload point into the input.</summary>
    public MessageFrame ReadMessage(in RawFrame frame) => Decode<MessageFrame>(frame);

    /// <summary>Decodes an Ack frame.</summary>
    public AckFrame ReadAck(in RawFrame frame) => Decode<AckFrame>(frame);

    /// <summary>Decodes an Error frame.</summary>
    public ErrorFrame ReadError(in RawFrame frame) => Decode<ErrorFrame>(frame);

    /// <summary>Decodes a Redirect frame.</summary>
    public RedirectFrame ReadRedirect(in RawFrame frame) => Decode<RedirectFrame>(frame);

    private TFrame Decode<TFrame>(in RawFrame frame)
        where TFrame : struct, IFrameCodec<TFrame>
    {
        if (frame.Type != TFrame.Type)
        {
            throw new InvalidOperationException($"frame is {frame.Type}, not {TFrame.Type}");
        }

        var reader = new FieldReader(frame.Body, _strings);
        var decoded = TFrame.ReadFields(ref reader);
        reader.EnsureEnd(frame.Type);
        return decoded;
    }

    private static uint ReadLength(in ReadOnlySequence<byte> buffer)
    {
        var first = buffer.FirstSpan;
        if (first.Length >= ProtocolLimits.LengthPrefixSize)
        {
            return BinaryPrimitives.ReadUInt32BigEndian(first);
        }

        Span<byte> prefix = stackalloc byte[ProtocolLimits.LengthPrefixSize];
        buffer.Slice(0, ProtocolLimits.LengthPrefixSize).CopyTo(prefix);
        return BinaryPrimitives.ReadUInt32BigEndian(prefix);
    }
}
