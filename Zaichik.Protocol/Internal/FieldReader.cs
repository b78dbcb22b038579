using System.Buffers.Binary;

namespace Zaichik.Protocol.Internal;

/// <summary>
/// Reads frame fields from one contiguous frame body. Every read checks the remaining length and
/// throws <see cref="ProtocolViolationException"/> rather than reading past the body.
/// </summary>
internal ref struct FieldReader
{
    private readonly ReadOnlyMemory<byte> _body;
    private readonly ReadOnlySpan<byte> _span;
    private readonly Utf8StringCache? _strings;
    private int _position;

    public FieldReader(ReadOnlyMemory<byte> body, Utf8StringCache? strings)
    {
        _body = body;
        _span = body.Span;
        _strings = strings;
        _position = 0;
    }

    public byte ReadByte()
    {
        Require(1, "byte");
        return _span[_position++];
    }

    public bool ReadBool()
    {
        var value = ReadByte();
        return value switch
        {
            0 => false,
            1 => true,
            _ => throw Malformed($"flag byte is {value}; expected 0 or 1"),
        };
    }

    public ushort ReadUInt16()
    {
        Require(sizeof(ushort), "u16");
        var value = BinaryPrimitives.ReadUInt16BigEndian(_span[_position..]);
        _position += sizeof(ushort);
        return value;
    }

    public uint ReadUInt32()
    {
        Require(sizeof(uint), "u32");
        var value = BinaryPrimitives.ReadUInt32BigEndian(_span[_position..]);
        _position += sizeof(uint);
        return value;
    }

    public long ReadInt64()
    {
        Require(sizeof(long), "i64");
        var value = BinaryPrimitives.ReadInt64BigEndian(_span[_position..]);
        _position += sizeof(long);
        return value;
    }

    public ulong ReadUInt64()
    {
        Require(sizeof(ulong), "u64");
        var value = BinaryPrimitives.ReadUInt64BigEndian(_span[_position..]);
        _position += sizeof(ulong);
        return value;
    }

    /// <summary>
    /// A <c>u64</c> sequence as a long. Sequences start at 1 and never come near 2^63, so a larger value is not one
    /// that any topic can hold: it is malformed rather than read back as a negative number.
    /// </summary>
    public long ReadSequence()
    {
        var value = ReadUInt64();
        if (value > long.MaxValue)
        {
            throw Malformed($"sequence {value} exceeds the largest sequence, 2^63 - 1");
        }

        return (long)value;
    }

    public string ReadString()
    {
        int length = ReadUInt16();
        Require(length, "string");
        var utf8 = _span.Slice(_position, length);
        _position += length;
        return Utf8StringCache.Decode(_strings, utf8);
    }

    public ReadOnlyMemory<byte>? ReadOptionalKey()
    {
        if (!ReadBool())
        {
            return null;
        }

        int length = ReadUInt16();
        Require(length, "key");
        var key = _body.Slice(_position, length);
        _position += length;
        return key;
    }

    public ReadOnlyMemory<byte> ReadBytes()
    {
        var length = ReadUInt32();
        if (length > (uint)(_span.Length - _position))
        {
            throw Malformed($"byte array of {length} bytes runs past the end of the frame ({_span.Length - _position} left)");
        }

        var bytes = _body.Slice(_position, (int)length);
        _position += (int)length;
        return bytes;
    }

    /// <summary>A header block (<see cref="HeaderBlock"/>) carried as <c>bytes</c>; empty when the message has none.</summary>
    public ReadOnlyMemory<byte> ReadHeaders()
    {
        var block = ReadBytes();
        if (HeaderBlock.Validate(block.Span) is { } problem)
        {
            throw Malformed(problem);
        }

        return block;
    }

    /// <summary>Skips whatever is left of the body (fields this reader's version does not define).</summary>
    public void SkipRest() => _position = _span.Length;

    public readonly void EnsureEnd(FrameType type)
    {
        if (_position != _span.Length)
        {
            throw Malformed($"{type} frame has {_span.Length - _position} unexpected trailing bytes");
        }
    }

    private readonly void Require(int count, string what)
    {
        if (count > _span.Length - _position)
        {
            throw Malformed($"frame ends inside a {what} field (needs {count} bytes, {_span.Length - _position} left)");
        }
    }

    private static ProtocolViolationException Malformed(string message) =>
        new(ErrorCode.MalformedFrame, message);
}
