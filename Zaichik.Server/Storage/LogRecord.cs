using System.Buffers.Binary;
using System.Numerics;

namespace Zaichik.Server.Storage;

/// <summary>
/// The layout of one entry in a topic's log (storage format 2), little-endian:
/// <c>[crc32c u32][format u8 = 2][flags u8][key length u16][sequence i64][timestamp i64][key][body]</c>. FasterLog keeps
/// the entry's length. The CRC covers everything after it, so a torn or corrupted entry is recognised wherever it is
/// read from, and the sequence, which only grows along the log, tells a stale or misplaced entry from a real one.
/// A message that fits in one log page is one <see cref="LogRecordKind.Whole"/> entry whose body is the payload. A
/// larger message is split into consecutive entries that all carry its sequence and timestamp: a
/// <see cref="LogRecordKind.First"/> entry whose body is <c>[whole payload length u32][first part]</c>, then
/// <see cref="LogRecordKind.Continuation"/> entries (no key) carrying the rest. This format is on disk: change it only
/// with a new format byte.
/// </summary>
internal readonly ref struct LogRecord
{
    public const byte Format = 2;

    public const int HeaderSize = ChecksumSize + sizeof(byte) + sizeof(byte) + sizeof(ushort) + sizeof(long) + sizeof(long);

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

    private LogRecord(LogRecordKind kind, long sequence, long timestampMs, bool hasKey, ReadOnlySpan<byte> key, int payloadLength, ReadOnlySpan<byte> part)
    {
        Kind = kind;
        Sequence = sequence;
        TimestampMs = timestampMs;
        HasKey = hasKey;
        Key = key;
        PayloadLength = payloadLength;
        Part = part;
    }

    public LogRecordKind Kind { get; }

    /// <summary>The message's sequence (a fragment carries its message's).</summary>
    public long Sequence { get; }

    public long TimestampMs { get; }

    public bool HasKey { get; }

    public ReadOnlySpan<byte> Key { get; }

    /// <summary>The whole message's payload length (for a Continuation: 0, it is known from the First fragment).</summary>
    public int PayloadLength { get; }

    /// <summary>The payload bytes this entry carries: all of them for a Whole record, a part for fragments.</summary>
    public ReadOnlySpan<byte> Part { get; }

    /// <summary>Bytes a message takes as one Whole entry.</summary>
    public static int SizeOf(int keyLength, int payloadLength) => HeaderSize + keyLength + payloadLength;

    /// <summary>Writes a Whole record and returns the bytes written.</summary>
    public static int WriteWhole(Span<byte> destination, long sequence, long timestampMs, bool hasKey, ReadOnlySpan<byte> key, ReadOnlySpan<byte> payload)
    {
        var position = WriteHeader(destination, sequence, timestampMs, hasKey ? HasKeyFlag : (byte)0, key);
        payload.CopyTo(destination[position..]);
        return Seal(destination, position + payload.Length);
    }

    /// <summary>Writes the First fragment of a message of <paramref name="payloadLength"/> bytes; returns the bytes written.</summary>
    public static int WriteFirst(Span<byte> destination, long sequence, long timestampMs, bool hasKey, ReadOnlySpan<byte> key, int payloadLength, ReadOnlySpan<byte> part)
    {
        var position = WriteHeader(destination, sequence, timestampMs, (byte)(FirstFragmentFlag | (hasKey ? HasKeyFlag : 0)), key);
        BinaryPrimitives.WriteInt32LittleEndian(destination[position..], payloadLength);
        position += FirstFragmentExtra;
        part.CopyTo(destination[position..]);
        return Seal(destination, position + part.Length);
    }

    /// <summary>Writes a Continuation fragment; returns the bytes written.</summary>
    public static int WriteContinuation(Span<byte> destination, long sequence, long timestampMs, ReadOnlySpan<byte> part)
    {
        var position = WriteHeader(destination, sequence, timestampMs, ContinuationFlag, default);
        part.CopyTo(destination[position..]);
        return Seal(destination, position + part.Length);
    }

    /// <summary>
    /// Parses an entry; false when its checksum does not match, it is too short, its format or flags are unknown, its
    /// sequence is not positive, or a length runs past its end.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> entry, out LogRecord record)
    {
        record = default;
        if (entry.Length < HeaderSize || entry[FormatAt] != Format || BinaryPrimitives.ReadUInt32LittleEndian(entry) != Checksum(entry[ChecksumSize..]))
        {
            return false;
        }

        var sequence = BinaryPrimitives.ReadInt64LittleEndian(entry[SequenceAt..]);
        var timestamp = BinaryPrimitives.ReadInt64LittleEndian(entry[TimestampAt..]);
        var flags = entry[FlagsAt];
        var hasKey = (flags & HasKeyFlag) != 0;
        int keyLength = BinaryPrimitives.ReadUInt16LittleEndian(entry[KeyLengthAt..]);
        if (sequence < 1 || HeaderSize + keyLength > entry.Length || (!hasKey && keyLength != 0))
        {
            return false;
        }

        var key = entry.Slice(HeaderSize, keyLength);
        var body = entry[(HeaderSize + keyLength)..];
        switch (flags & ~HasKeyFlag)
        {
            case 0:
                record = new LogRecord(LogRecordKind.Whole, sequence, timestamp, hasKey, key, body.Length, body);
                return true;
            case FirstFragmentFlag when body.Length >= FirstFragmentExtra:
                var payloadLength = BinaryPrimitives.ReadInt32LittleEndian(body);
                var part = body[FirstFragmentExtra..];
                if (payloadLength < part.Length)
                {
                    return false;
                }

                record = new LogRecord(LogRecordKind.First, sequence, timestamp, hasKey, key, payloadLength, part);
                return true;
            case ContinuationFlag when !hasKey:
                record = new LogRecord(LogRecordKind.Continuation, sequence, timestamp, false, default, 0, body);
                return true;
            default:
                return false;
        }
    }

    private static int WriteHeader(Span<byte> destination, long sequence, long timestampMs, byte flags, ReadOnlySpan<byte> key)
    {
        destination[FormatAt] = Format;
        destination[FlagsAt] = flags;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[KeyLengthAt..], (ushort)key.Length);
        BinaryPrimitives.WriteInt64LittleEndian(destination[SequenceAt..], sequence);
        BinaryPrimitives.WriteInt64LittleEndian(destination[TimestampAt..], timestampMs);
        key.CopyTo(destination[HeaderSize..]);
        return HeaderSize + key.Length;
    }

    /// <summary>Writes the checksum of the first <paramref name="length"/> bytes' content; returns the length.</summary>
    private static int Seal(Span<byte> destination, int length)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Checksum(destination[ChecksumSize..length]));
        return length;
    }

    /// <summary>CRC-32C, eight bytes at a time with the processor's CRC instruction where there is one.</summary>
    internal static uint Checksum(ReadOnlySpan<byte> data)
    {
        var crc = ~0u;
        while (data.Length >= sizeof(ulong))
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[sizeof(ulong)..];
        }

        foreach (var b in data)
        {
            crc = BitOperations.Crc32C(crc, b);
        }

        return ~crc;
    }
}

/// <summary>Whether a log entry holds a whole message or a fragment of one.</summary>
internal enum LogRecordKind : byte
{
    Whole,
    First,
    Continuation,
}
