using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;
using Zaichik.Protocol;

namespace Zaichik.Tests.Protocol;

/// <summary>Encoding, decoding and buffer-shaping helpers shared by the codec tests.</summary>
internal static class CodecTestHelpers
{
    /// <summary>Runs a FrameWriter call against a fresh buffer and returns the bytes it wrote.</summary>
    public static byte[] Encode(Action<IBufferWriter<byte>> write)
    {
        var output = new ArrayBufferWriter<byte>();
        write(output);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>Reads exactly one frame from <paramref name="bytes"/>, failing if anything is left over.</summary>
    public static RawFrame ReadSingle(FrameReader reader, ReadOnlySequence<byte> bytes)
    {
        var buffer = bytes;
        reader.TryRead(ref buffer, out var frame).ShouldBeTrue("the buffer holds a whole frame, so TryRead should return it");
        buffer.Length.ShouldBe(0, "exactly one frame was written, so nothing should remain after reading it");
        return frame;
    }

    /// <summary>Reads exactly one frame from a single contiguous buffer.</summary>
    public static RawFrame ReadSingle(FrameReader reader, byte[] bytes) => ReadSingle(reader, new ReadOnlySequence<byte>(bytes));

    /// <summary>Writes a frame through a real <see cref="Pipe"/> and reads it back with a fresh <see cref="FrameReader"/>.</summary>
    public static async Task<TFrame> RoundTripAsync<TFrame>(Action<PipeWriter> write, Func<FrameReader, RawFrame, TFrame> decode)
    {
        var pipe = new Pipe();
        write(pipe.Writer);
        await pipe.Writer.FlushAsync();
        await pipe.Writer.CompleteAsync();

        var result = await pipe.Reader.ReadAsync();
        var buffer = result.Buffer;
        var reader = new FrameReader();
        reader.TryRead(ref buffer, out var frame).ShouldBeTrue("a whole frame was flushed, so TryRead should return it");
        var decoded = decode(reader, frame);
        buffer.Length.ShouldBe(0, "only one frame was written, so nothing should remain after it");
        pipe.Reader.AdvanceTo(buffer.Start, buffer.End);
        await pipe.Reader.CompleteAsync();
        return decoded;
    }

    /// <summary>Splits <paramref name="bytes"/> into a multi-segment sequence at the given offsets.</summary>
    public static ReadOnlySequence<byte> Segmented(byte[] bytes, params int[] splitAt)
    {
        var chunks = new List<byte[]>();
        var start = 0;
        foreach (var split in splitAt)
        {
            chunks.Add(bytes[start..split]);
            start = split;
        }

        chunks.Add(bytes[start..]);
        return Segmented(chunks);
    }

    /// <summary>A sequence holding each of <paramref name="bytes"/> in its own one-byte segment.</summary>
    public static ReadOnlySequence<byte> OneSegmentPerByte(byte[] bytes) =>
        Segmented([.. bytes.Select(b => new[] { b })]);

    /// <summary>Chains the chunks, in order, into one <see cref="ReadOnlySequence{T}"/>.</summary>
    public static ReadOnlySequence<byte> Segmented(IReadOnlyList<byte[]> chunks)
    {
        var first = new BufferSegment(chunks[0]);
        var last = first;
        foreach (var chunk in chunks.Skip(1))
        {
            last = last.Append(chunk);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>Joins byte arrays, for writing several frames back to back.</summary>
    public static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    /// <summary>Decodes a frame with the FrameReader method that matches its type.</summary>
    public static object Decode(FrameReader reader, in RawFrame frame) => frame.Type switch
    {
        FrameType.Hello => reader.ReadHello(frame),
        FrameType.CreateTopic => reader.ReadCreateTopic(frame),
        FrameType.Publish => reader.ReadPublish(frame),
        FrameType.Subscribe => reader.ReadSubscribe(frame),
        FrameType.Unsubscribe => reader.ReadUnsubscribe(frame),
        FrameType.Commit => reader.ReadCommit(frame),
        FrameType.Close => reader.ReadClose(frame),
        FrameType.Ping => reader.ReadPing(frame),
        FrameType.Pong => reader.ReadPong(frame),
        FrameType.Nack => reader.ReadNack(frame),
        FrameType.Message => reader.ReadMessage(frame),
        FrameType.Ack => reader.ReadAck(frame),
        FrameType.Error => reader.ReadError(frame),
        _ => throw new ArgumentOutOfRangeException(nameof(frame), frame.Type, "not a frame type"),
    };

    /// <summary>Reads and decodes one frame, so malformed-input tests can assert on the exception alone.</summary>
    public static object ReadAndDecode(byte[] bytes, int maxFrameSize = ProtocolLimits.DefaultMaxFrameSize)
    {
        var reader = new FrameReader(maxFrameSize);
        var frame = ReadSingle(reader, bytes);
        return Decode(reader, frame);
    }

    /// <summary>Returns the frame with its last <paramref name="count"/> body bytes cut off and its length prefix adjusted to match.</summary>
    public static byte[] DropLastBodyBytes(byte[] frame, int count)
    {
        var shorter = frame[..^count];
        BinaryPrimitives.WriteUInt32BigEndian(shorter, (uint)(shorter.Length - ProtocolLimits.LengthPrefixSize));
        return shorter;
    }

    /// <summary>Returns the frame with extra bytes appended to its body and its length prefix adjusted to match.</summary>
    public static byte[] AppendBodyBytes(byte[] frame, params byte[] extra)
    {
        var longer = Concat(frame, extra);
        BinaryPrimitives.WriteUInt32BigEndian(longer, (uint)(longer.Length - ProtocolLimits.LengthPrefixSize));
        return longer;
    }

    /// <summary>Upper-case hex with a space between bytes, as the protocol document prints frames.</summary>
    public static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes).Chunk(2).Aggregate(
        new StringBuilder(),
        (text, pair) => (text.Length == 0 ? text : text.Append(' ')).Append(pair),
        text => text.ToString());

    private sealed class BufferSegment : ReadOnlySequenceSegment<byte>
    {
        public BufferSegment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public BufferSegment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new BufferSegment(memory) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }
}

/// <summary>
/// The read side of a connection over an in-memory <see cref="Pipe"/>: bytes go in through the writer, and each
/// send runs the same loop a connection runs (TryRead until false, then AdvanceTo(buffer.Start, buffer.End)).
/// </summary>
internal sealed class FramePipe
{
    private readonly Pipe _pipe;
    private readonly FrameReader _reader;

    public FramePipe(int maxFrameSize = ProtocolLimits.DefaultMaxFrameSize, PipeOptions? options = null)
    {
        _pipe = new Pipe(options ?? PipeOptions.Default);
        _reader = new FrameReader(maxFrameSize);
    }

    /// <summary>Bytes the reader has seen but not consumed, i.e. the partial frame it is waiting to complete.</summary>
    public long Unconsumed { get; private set; }

    /// <summary>The reader, for decoding the frames a send returned.</summary>
    public FrameReader Reader => _reader;

    /// <summary>Writes and flushes <paramref name="bytes"/>, then returns the frames that became complete, bodies copied.</summary>
    public async Task<IReadOnlyList<RawFrame>> SendAsync(ReadOnlyMemory<byte> bytes)
    {
        var flush = await _pipe.Writer.WriteAsync(bytes);
        flush.IsCompleted.ShouldBeFalse("the reader side is still open");

        var result = await _pipe.Reader.ReadAsync();
        var buffer = result.Buffer;
        var frames = new List<RawFrame>();
        try
        {
            while (_reader.TryRead(ref buffer, out var frame))
            {
                frames.Add(frame with { Body = frame.Body.ToArray() });
            }
        }
        finally
        {
            _pipe.Reader.AdvanceTo(buffer.Start, buffer.End);
            Unconsumed = buffer.Length;
        }

        return frames;
    }

    /// <summary>Sends <paramref name="bytes"/> in chunks of <paramref name="chunkSize"/>, one flush each, and returns the frames from each send.</summary>
    public async Task<List<IReadOnlyList<RawFrame>>> SendInChunksAsync(byte[] bytes, int chunkSize)
    {
        var perSend = new List<IReadOnlyList<RawFrame>>();
        for (var start = 0; start < bytes.Length; start += chunkSize)
        {
            perSend.Add(await SendAsync(bytes.AsMemory(start, Math.Min(chunkSize, bytes.Length - start))));
        }

        return perSend;
    }
}

/// <summary>
/// Builds frame bytes field by field straight from the specification in docs/protocol.md, independently of
/// FrameWriter, so tests can both check the writer's layout and hand the reader input the writer never produces.
/// </summary>
internal sealed class WireBuilder
{
    private readonly byte _type;
    private readonly List<byte> _fields = [];

    private WireBuilder(byte type) => _type = type;

    public static WireBuilder Frame(FrameType type) => new((byte)type);

    public static WireBuilder Frame(byte type) => new(type);

    public WireBuilder U8(byte value)
    {
        _fields.Add(value);
        return this;
    }

    public WireBuilder U16(ushort value) => Raw((byte)(value >> 8), (byte)value);

    public WireBuilder U32(uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return Raw(bytes);
    }

    public WireBuilder U64(ulong value)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, value);
        return Raw(bytes);
    }

    public WireBuilder I64(long value) => U64(unchecked((ulong)value));

    public WireBuilder Str(string value) => Utf8(Encoding.UTF8.GetBytes(value));

    public WireBuilder Utf8(byte[] utf8) => U16((ushort)utf8.Length).Raw(utf8);

    public WireBuilder Bytes(byte[] value) => U32((uint)value.Length).Raw(value);

    public WireBuilder Raw(params byte[] bytes)
    {
        _fields.AddRange(bytes);
        return this;
    }

    /// <summary>The fields alone, without length prefix and type byte (a header block, say).</summary>
    public byte[] FieldBytes() => [.. _fields];

    /// <summary>The whole frame with a correct length prefix (type byte plus fields).</summary>
    public byte[] Build() => BuildDeclaring((uint)(1 + _fields.Count));

    /// <summary>The whole frame with whatever length prefix the test wants to lie about.</summary>
    public byte[] BuildDeclaring(uint declaredLength)
    {
        var bytes = new byte[ProtocolLimits.LengthPrefixSize + 1 + _fields.Count];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, declaredLength);
        bytes[ProtocolLimits.LengthPrefixSize] = _type;
        _fields.CopyTo(bytes, ProtocolLimits.LengthPrefixSize + 1);
        return bytes;
    }
}
