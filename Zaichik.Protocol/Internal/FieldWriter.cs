using System.Buffers.Binary;
using System.Text;

namespace Zaichik.Protocol.Internal;

/// <summary>Writes frame fields, big-endian, into a span already sized by <see cref="FieldSize"/>.</summary>
internal ref struct FieldWriter
{
    private readonly Span<byte> _destination;
    private int _position;

    public FieldWriter(Span<byte> destination)
    {
        _destination = destination;
        _position = 0;
    }

    public readonly int Written => _position;

    public void WriteByte(byte value) => _destination[_position++] = value;

    public void WriteBool(bool value) => WriteByte(value ? (byte)1 : (byte)0);

    public void WriteUInt16(ushort value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(_destination[_position..], value);
        _position += sizeof(ushort);
    }

    public void WriteUInt32(uint value)
    {
        BinaryPrimitives.WriteUInt32BigEndian(_destination[_position..], value);
        _position += sizeof(uint);
    }

    public void WriteInt64(long value)
    {
        BinaryPrimitives.WriteInt64BigEndian(_destination[_position..], value);
        _position += sizeof(long);
    }

    public void WriteUInt64(ulong value)
    {
        BinaryPrimitives.WriteUInt64BigEndian(_destination[_position..], value);
        _position += sizeof(ulong);
    }

    /// <summary>Writes a sequence as a <c>u64</c>; <see cref="FieldSize.Sequence"/> has already refused a negative one.</summary>
    public void WriteSequence(long value) => WriteUInt64((ulong)value);

    public void WriteString(string value)
    {
        var length = Encoding.UTF8.GetBytes(value, _destination[(_position + sizeof(ushort))..]);
        WriteUInt16(checked((ushort)length));
        _position += length;
    }

    public void WriteUtf8(ReadOnlySpan<byte> utf8)
    {
        WriteUInt16(checked((ushort)utf8.Length));
        utf8.CopyTo(_destination[_position..]);
        _position += utf8.Length;
    }

    public void WriteOptionalKey(bool hasKey, ReadOnlySpan<byte> key)
    {
        WriteBool(hasKey);
        if (hasKey)
        {
            WriteUInt16(checked((ushort)key.Length));
            key.CopyTo(_destination[_position..]);
            _position += key.Length;
        }
    }

    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        WriteUInt32((uint)value.Length);
        value.CopyTo(_destination[_position..]);
        _position += value.Length;
    }
}

/// <summary>Sizes of encoded fields, so a frame can reserve its whole length before writing.</summary>
internal static class FieldSize
{
    public const int Byte = 1;
    public const int UInt16 = 2;
    public const int UInt32 = 4;
    public const int Int64 = 8;

    /// <summary>
    /// The size of a <c>u64</c> sequence field. A negative sequence has no encoding (the field is unsigned), so it is
    /// refused here, before any byte of the frame is written.
    /// </summary>
    public static int Sequence(long value, string paramName)
    {
        if (value < 0)
        {
            throw new ArgumentOutOfRangeException(paramName, value, "a sequence is encoded as a u64 and must not be negative");
        }

        return Int64;
    }

    public static int String(string value)
    {
        var count = Encoding.UTF8.GetByteCount(value);
        if (count > ProtocolLimits.MaxStringBytes)
        {
            throw new ArgumentException($"string of {count} UTF-8 bytes exceeds the wire limit of {ProtocolLimits.MaxStringBytes}", nameof(value));
        }

        return UInt16 + count;
    }

    public static int OptionalKey(bool hasKey, int keyLength)
    {
        if (keyLength > ProtocolLimits.MaxKeyBytes)
        {
            throw new ArgumentException($"key of {keyLength} bytes exceeds the wire limit of {ProtocolLimits.MaxKeyBytes}");
        }

        return Byte + (hasKey ? UInt16 + keyLength : 0);
    }

    public static int Bytes(int length) => UInt32 + length;
}
