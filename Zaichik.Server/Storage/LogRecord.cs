using System.Buffers.Binary;
using System.Numerics;

namespace Zaichik.Server.Storage;

/// <summary>
/// The layout of one entry in a topic's log (storage format 3), little-endian:
/// <c>[crc32c u32][format u8 = 3][flags u8][key length u16][sequence i64][timestamp i64]</c>, then, when its flag is set,
/// <c>[producer id u64][producer sequence u64]</c> (an idempotent publish), then, when its flag is set,
/// <c>[headers length u32]</c>, then <c>[key][headers][payload]</c>. FasterLog keeps the entry's length. The CRC covers
/// everything after it, so a torn or corrupted entry is recognised wherever it is read from, and the sequence, which
/// only grows along the log, tells a stale or misplaced entry from a real one.
/// A message that fits in one log page is one <see cref="LogRecordKind.Whole"/> entry. A larger message is split into
/// consecutive entries that all carry its sequence and timestamp: a <see cref="LogRecordKind.First"/> entry (with the
/// producer and headers length, if any, and the key) whose body is <c>[whole payload length u32]</c> and the first part
/// of the headers followed by the payload, then <see cref="LogRecordKind.Continuation"/> entries (no key, no optional
/// fields) carrying the rest.
/// Format 2 is format 3 without the optional fields (its flags never set them); its entries are still read, so data
/// folders written before headers and idempotent producers keep working. This format is on disk: change it only with a
/// new format byte.
/// </summary>
internal readonly ref struct LogRecord
{
    public const byte Format = 3;

    /// <summary>The previous format, still read: no producer, no headers.</summary>
    public const byte Format2 = 2;

    /// <summary>Bytes of the fixed part every entry starts with.</summary>
    public const int HeaderSize = ChecksumSize + sizeof(byte) + sizeof(byte) + sizeof(ushort) + sizeof(long) + sizeof(long);

    /// <summary>Bytes the producer id and producer sequence add after the fixed part.</summary>
    public const int ProducerSize = sizeof(ulong) + sizeof(ulong);

    /// <summary>Bytes the headers length adds after the fixed part (and the producer).</summary>
    public const int HeadersLengthSize = sizeof(uint);

    /// <summary>The longest an entry's header can be: the fixed part and both optional fields.</summary>
    public const int MaxHeaderSize = HeaderSize + ProducerSize + HeadersLengthSize;

    /// <summary>Bytes a First fragment adds after the key: the length of the whole payload.</summary>
    public const int FirstFragmentExtra = sizeof(int);

    private const int ChecksumSize = sizeof(uint);
    private const int FormatAt = ChecksumSize;
    private const int FlagsAt = FormatAt + 1;
    private const int KeyLengthAt = FlagsAt + 1;
    private const int SequenceAt = KeyLengthAt + sizeof(ushort);
    private const int TimestampAt = SequenceAt + sizeof(long);

    private const byte HasKeyFlag = 0x01;
    private const byte FirstFragmentFlag = 0x02;
    private const byte ContinuationFlag = 0x04;
    private const byte HasProducerFlag = 0x08;
    private const byte HasHeadersFlag = 0x10;
    private const byte Format2Flags = HasKeyFlag | FirstFragmentFlag | ContinuationFlag;

    private LogRecord(
        LogRecordKind kind, long sequence, long timestampMs, bool hasKey, ReadOnlySpan<byte> key, ProducerStamp producer, int headersLength, int payloadLength, ReadOnlySpan<byte> part)
    {
        Kind = kind;
        Sequence = sequence;
        TimestampMs = timestampMs;
        HasKey = hasKey;
        Key = key;
        Producer = producer;
        HeadersLength = headersLength;
        PayloadLength = payloadLength;
        Part = part;
    }

    public LogRecordKind Kind { get; }

    /// <summary>The message's sequence (a fragment carries its message's).</summary>
    public long Sequence { get; }

    public long TimestampMs { get; }

    public bool HasKey { get; }

    public ReadOnlySpan<byte> Key { get; }

    /// <summary>The idempotent producer that published it, or <see cref="ProducerStamp.None"/> (always for a Continuation).</summary>
    public ProducerStamp Producer { get; }

    /// <summary>Bytes of the message's header block (for a Continuation: 0, it is known from the First fragment).</summary>
    public int HeadersLength { get; }

    /// <summary>The whole message's payload length (for a Continuation: 0, it is known from the First fragment).</summary>
    public int PayloadLength { get; }

    /// <summary>
    /// The content bytes this entry carries, the headers followed by the payload: all of them for a Whole record
    /// (<see cref="Headers"/> and <see cref="Payload"/> split it), a part for fragments.
    /// </summary>
    public ReadOnlySpan<byte> Part { get; }

    /// <summary>A Whole record's header block.</summary>
    public ReadOnlySpan<byte> Headers => Part[..HeadersLength];

    /// <summary>A Whole record's payload.</summary>
    public ReadOnlySpan<byte> Payload => Part[HeadersLength..];

    /// <summary>Bytes an entry's header takes: the fixed part and the optional fields this message needs.</summary>
    public static int HeaderSizeOf(int headersLength, ProducerStamp producer) =>
        HeaderSize + (producer.IsSet ? ProducerSize : 0) + (headersLength > 0 ? HeadersLengthSize : 0);

    /// <summary>Bytes a message takes as one Whole entry.</summary>
    public static int SizeOf(int keyLength, int headersLength, int payloadLength, ProducerStamp producer) =>
        HeaderSizeOf(headersLength, producer) + keyLength + headersLength + payloadLength;

    /// <summary>Writes a Whole record and returns the bytes written.</summary>
    public static int WriteWhole(
        Span<byte> destination, long sequence, long timestampMs, bool hasKey, ReadOnlySpan<byte> key, ReadOnlySpan<byte> headers, ProducerStamp producer, ReadOnlySpan<byte> payload)
    {
        var position = WriteHeader(destination, sequence, timestampMs, hasKey ? HasKeyFlag : (byte)0, key, producer, headers.Length);
        headers.CopyTo(destination[position..]);
        position += headers.Length;
        payload.CopyTo(destination[position..]);
        return Seal(destination, position + payload.Length);
    }

    /// <summary>
    /// Writes the First fragment of a message with a header block of <paramref name="headersLength"/> bytes and a payload
    /// of <paramref name="payloadLength"/> bytes. Its content part is <paramref name="headersPart"/> then
    /// <paramref name="payloadPart"/> (the first bytes of the headers, then of the payload). Returns the bytes written.
    /// </summary>
    public static int WriteFirst(
        Span<byte> destination, long sequence, long timestampMs, bool hasKey, ReadOnlySpan<byte> key, int headersLength, ProducerStamp producer, int payloadLength,
        ReadOnlySpan<byte> headersPart, ReadOnlySpan<byte> payloadPart)
    {
        var position = WriteHeader(destination, sequence, timestampMs, (byte)(FirstFragmentFlag | (hasKey ? HasKeyFlag : 0)), key, producer, headersLength);
        BinaryPrimitives.WriteInt32LittleEndian(destination[position..], payloadLength);
        position += FirstFragmentExtra;
        return Seal(destination, WriteParts(destination, position, headersPart, payloadPart));
    }

    /// <summary>Writes a Continuation fragment carrying <paramref name="headersPart"/> then <paramref name="payloadPart"/>; returns the bytes written.</summary>
    public static int WriteContinuation(Span<byte> destination, long sequence, long timestampMs, ReadOnlySpan<byte> headersPart, ReadOnlySpan<byte> payloadPart)
    {
        var position = WriteHeader(destination, sequence, timestampMs, ContinuationFlag, default, ProducerStamp.None, 0);
        return Seal(destination, WriteParts(destination, position, headersPart, payloadPart));
    }

    /// <summary>
    /// Parses an entry of format 3 or 2; false when its checksum does not match, it is too short, its format or flags are
    /// unknown, its sequence is not positive, or a length runs past its end.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> entry, out LogRecord record)
    {
        record = default;
        if (entry.Length < HeaderSize || entry[FormatAt] is not (Format or Format2)
            || BinaryPrimitives.ReadUInt32LittleEndian(entry) != Checksum(entry[ChecksumSize..]))
        {
            return false;
        }

        var sequence = BinaryPrimitives.ReadInt64LittleEndian(entry[SequenceAt..]);
        var timestamp = BinaryPrimitives.ReadInt64LittleEndian(entry[TimestampAt..]);
        var flags = entry[FlagsAt];
        if (entry[FormatAt] == Format2 && (flags & ~Format2Flags) != 0)
        {
            return false;
        }

        var hasKey = (flags & HasKeyFlag) != 0;
        int keyLength = BinaryPrimitives.ReadUInt16LittleEndian(entry[KeyLengthAt..]);
        if (sequence < 1 || (!hasKey && keyLength != 0))
        {
            return false;
        }

        var position = HeaderSize;
        var producer = ProducerStamp.None;
        if ((flags & HasProducerFlag) != 0)
        {
            if (entry.Length < position + ProducerSize)
            {
                return false;
            }

            producer = new ProducerStamp(BinaryPrimitives.ReadUInt64LittleEndian(entry[position..]), BinaryPrimitives.ReadUInt64LittleEndian(entry[(position + sizeof(ulong))..]));
            position += ProducerSize;
            if (!producer.IsSet)
            {
                return false;
            }
        }

        var headersLength = 0;
        if ((flags & HasHeadersFlag) != 0)
        {
            if (entry.Length < position + HeadersLengthSize)
            {
                return false;
            }

            var length = BinaryPrimitives.ReadUInt32LittleEndian(entry[position..]);
            position += HeadersLengthSize;
            if (length is 0 or > int.MaxValue)
            {
                return false;
            }

            headersLength = (int)length;
        }

        if (position + keyLength > entry.Length)
        {
            return false;
        }

        var key = entry.Slice(position, keyLength);
        var body = entry[(position + keyLength)..];
        switch (flags & ~(HasKeyFlag | HasProducerFlag | HasHeadersFlag))
        {
            case 0 when headersLength <= body.Length:
                record = new LogRecord(LogRecordKind.Whole, sequence, timestamp, hasKey, key, producer, headersLength, body.Length - headersLength, body);
                return true;
            case FirstFragmentFlag when body.Length >= FirstFragmentExtra:
                var payloadLength = BinaryPrimitives.ReadInt32LittleEndian(body);
                var part = body[FirstFragmentExtra..];
                if (payloadLength < 0 || (long)headersLength + payloadLength < part.Length || (long)headersLength + payloadLength > int.MaxValue)
                {
                    return false;
                }

                record = new LogRecord(LogRecordKind.First, sequence, timestamp, hasKey, key, producer, headersLength, payloadLength, part);
                return true;
            case ContinuationFlag when !hasKey && !producer.IsSet && headersLength == 0:
                record = new LogRecord(LogRecordKind.Continuation, sequence, timestamp, false, default, ProducerStamp.None, 0, 0, body);
                return true;
            default:
                return false;
        }
    }

    private static int WriteHeader(Span<byte> destination, long sequence, long timestampMs, byte flags, ReadOnlySpan<byte> key, ProducerStamp producer, int headersLength)
    {
        var position = HeaderSize;
        if (producer.IsSet)
        {
            flags |= HasProducerFlag;
            BinaryPrimitives.WriteUInt64LittleEndian(destination[position..], producer.ProducerId);
            BinaryPrimitives.WriteUInt64LittleEndian(destination[(position + sizeof(ulong))..], producer.Sequence);
            position += ProducerSize;
        }

        if (headersLength > 0)
        {
            flags |= HasHeadersFlag;
            BinaryPrimitives.WriteUInt32LittleEndian(destination[position..], (uint)headersLength);
            position += HeadersLengthSize;
        }

        destination[FormatAt] = Format;
        destination[FlagsAt] = flags;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[KeyLengthAt..], (ushort)key.Length);
        BinaryPrimitives.WriteInt64LittleEndian(destination[SequenceAt..], sequence);
        BinaryPrimitives.WriteInt64LittleEndian(destination[TimestampAt..], timestampMs);
        key.CopyTo(destination[position..]);
        return position + key.Length;
    }

    private static int WriteParts(Span<byte> destination, int position, ReadOnlySpan<byte> headersPart, ReadOnlySpan<byte> payloadPart)
    {
        headersPart.CopyTo(destination[position..]);
        position += headersPart.Length;
        payloadPart.CopyTo(destination[position..]);
        return position + payloadPart.Length;
    }

    /// <summary>Writes the checksum of the first <paramref name="length"/> bytes' content; returns the length.</summary>
    private static int Seal(Span<byte> destination, int length)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Checksum(destination[ChecksumSize..length]));
        return length;
    }

    /// <summary>CRC-32C, eight bytes at a time with the processor's CRC instruction where there is one.</summary>
    internal static uint Checksum(ReadOnlySpan<byte> data) => ~ChecksumUpdate(~0u, data);

    /// <summary>Goes on with a CRC-32C over more bytes: start from <c>~0u</c>, and the checksum is the complement of the last state.</summary>
    internal static uint ChecksumUpdate(uint crc, ReadOnlySpan<byte> data)
    {
        while (data.Length >= sizeof(ulong))
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[sizeof(ulong)..];
        }

        foreach (var b in data)
        {
            crc = BitOperations.Crc32C(crc, b);
        }

        return crc;
    }
}

/// <summary>Whether a log entry holds a whole message or a fragment of one.</summary>
internal enum LogRecordKind : byte
{
    Whole,
    First,
    Continuation,
}
