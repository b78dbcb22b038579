using System.Buffers.Binary;

namespace Zaichik.Server.Storage;

/// <summary>
/// The layout of one message inside a topic's log entry:
/// <c>[timestamp i64][flags u8][key length u16][key][payload]</c>, little-endian. The entry's length, kept by
/// FasterLog, gives the payload length. This format is on disk: change it only with a version flag.
/// </summary>
internal readonly ref struct LogRecord
{
    public const int HeaderSize = sizeof(long) + sizeof(byte) + sizeof(ushort);
    private const byte HasKeyFlag = 0x01;

    private LogRecord(long timestampMs, bool hasKey, ReadOnlySpan<byte> key, ReadOnlySpan<byte> payload)
    {
        TimestampMs = timestampMs;
        HasKey = hasKey;
        Key = key;
        Payload = payload;
    }

    public long TimestampMs { get; }

    public bool HasKey { get; }

    public ReadOnlySpan<byte> Key { get; }

    public ReadOnlySpan<byte> Payload { get; }

    public static int SizeOf(int keyLength, int payloadLength) => HeaderSize + keyLength + payloadLength;

    /// <summary>Writes a record into <paramref name="destination"/> and returns the bytes written.</summary>
    public static int Write(Span<byte> destination, long timestampMs, bool hasKey, ReadOnlySpan<byte> key, ReadOnlySpan<byte> payload)
    {
        BinaryPrimitives.WriteInt64LittleEndian(destination, timestampMs);
        destination[sizeof(long)] = hasKey ? HasKeyFlag : (byte)0;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[(sizeof(long) + 1)..], (ushort)key.Length);
        key.CopyTo(destination[HeaderSize..]);
        payload.CopyTo(destination[(HeaderSize + key.Length)..]);
        return HeaderSize + key.Length + payload.Length;
    }

    /// <summary>Reads only the timestamp, for the retention sweep.</summary>
    public static bool TryReadTimestamp(ReadOnlySpan<byte> entry, out long timestampMs)
    {
        if (entry.Length < HeaderSize)
        {
            timestampMs = 0;
            return false;
        }

        timestampMs = BinaryPrimitives.ReadInt64LittleEndian(entry);
        return true;
    }

    /// <summary>Parses an entry; false when it is too short or its key length runs past its end.</summary>
    public static bool TryRead(ReadOnlySpan<byte> entry, out LogRecord record)
    {
        record = default;
        if (entry.Length < HeaderSize)
        {
            return false;
        }

        var timestamp = BinaryPrimitives.ReadInt64LittleEndian(entry);
        var hasKey = (entry[sizeof(long)] & HasKeyFlag) != 0;
        int keyLength = BinaryPrimitives.ReadUInt16LittleEndian(entry[(sizeof(long) + 1)..]);
        if (HeaderSize + keyLength > entry.Length)
        {
            return false;
        }

        record = new LogRecord(timestamp, hasKey, entry.Slice(HeaderSize, keyLength), entry[(HeaderSize + keyLength)..]);
        return true;
    }
}
