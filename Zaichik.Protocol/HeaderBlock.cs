using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Unicode;

namespace Zaichik.Protocol;

/// <summary>
/// The encoding of a message's headers: entries back to back, each a kind byte (<c>0</c> bytes, <c>1</c> UTF-8 text),
/// a key (<c>u16</c> byte count, 1 or more bytes of UTF-8) and a value (<c>u32</c> byte count, then the bytes). An
/// empty block means no headers. Publish and Message frames carry the block as one <c>bytes</c> field, and the server
/// stores and delivers it unchanged, so it is validated once, when a frame carrying it is decoded.
/// </summary>
public static class HeaderBlock
{
    /// <summary>Kind byte of a header whose value is raw bytes.</summary>
    public const byte BytesKind = 0;

    /// <summary>Kind byte of a header whose value is UTF-8 text.</summary>
    public const byte TextKind = 1;

    /// <summary>Bytes one entry takes in a block.</summary>
    public static int EntrySize(int keyUtf8Length, int valueLength) => 1 + 2 + keyUtf8Length + 4 + valueLength;

    /// <summary>Appends one entry. The key must be 1 to 65,535 bytes of UTF-8.</summary>
    /// <exception cref="ArgumentException">The key is empty or too long.</exception>
    public static void WriteEntry(IBufferWriter<byte> output, string key, bool isText, ReadOnlySpan<byte> value)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(key);
        var keyLength = Encoding.UTF8.GetByteCount(key);
        if (keyLength is 0 or > ProtocolLimits.MaxStringBytes)
        {
            throw new ArgumentException($"a header key must be 1 to {ProtocolLimits.MaxStringBytes} bytes of UTF-8; this one is {keyLength}", nameof(key));
        }

        var size = EntrySize(keyLength, value.Length);
        var span = output.GetSpan(size);
        span[0] = isText ? TextKind : BytesKind;
        BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)keyLength);
        Encoding.UTF8.GetBytes(key, span.Slice(3, keyLength));
        BinaryPrimitives.WriteUInt32BigEndian(span[(3 + keyLength)..], (uint)value.Length);
        value.CopyTo(span[(7 + keyLength)..]);
        output.Advance(size);
    }

    /// <summary>Null when <paramref name="block"/> is a well-formed block, otherwise what is wrong with it.</summary>
    public static string? Validate(ReadOnlySpan<byte> block)
    {
        var position = 0;
        var index = 0;
        while (position < block.Length)
        {
            var rest = block[position..];
            if (rest.Length < 3)
            {
                return $"header {index} ends inside its kind and key length";
            }

            if (rest[0] is not (BytesKind or TextKind))
            {
                return $"header {index} has kind {rest[0]}; expected 0 (bytes) or 1 (text)";
            }

            int keyLength = BinaryPrimitives.ReadUInt16BigEndian(rest[1..]);
            if (keyLength == 0)
            {
                return $"header {index} has an empty key";
            }

            if (rest.Length < 3 + keyLength + 4)
            {
                return $"header {index} ends inside its key or value length";
            }

            if (!Utf8.IsValid(rest.Slice(3, keyLength)))
            {
                return $"header {index} has a key that is not valid UTF-8";
            }

            var valueLength = BinaryPrimitives.ReadUInt32BigEndian(rest[(3 + keyLength)..]);
            if (valueLength > (uint)(rest.Length - 7 - keyLength))
            {
                return $"header {index} has a value of {valueLength} bytes that runs past the end of the block";
            }

            if (rest[0] == TextKind && !Utf8.IsValid(rest.Slice(7 + keyLength, (int)valueLength)))
            {
                return $"header {index} is marked as text but its value is not valid UTF-8";
            }

            position += 7 + keyLength + (int)valueLength;
            index++;
        }

        return null;
    }

    /// <summary>The entries of a block that <see cref="Validate"/> accepted, in order. Values point into the block.</summary>
    public static Enumerator Enumerate(ReadOnlyMemory<byte> block) => new(block);

    /// <summary>One header of a block.</summary>
    /// <param name="Key">Its key.</param>
    /// <param name="IsText">True when the value is UTF-8 text.</param>
    /// <param name="Value">Its value, pointing into the block.</param>
    public readonly record struct Entry(string Key, bool IsText, ReadOnlyMemory<byte> Value);

    /// <summary>Walks a block's entries without allocating anything but the key strings.</summary>
    public struct Enumerator
    {
        private readonly ReadOnlyMemory<byte> _block;
        private int _position;

        internal Enumerator(ReadOnlyMemory<byte> block)
        {
            _block = block;
            _position = 0;
            Current = default;
        }

        /// <summary>The entry the last <see cref="MoveNext"/> reached.</summary>
        public Entry Current { get; private set; }

        /// <summary>This enumerator, for <c>foreach</c>.</summary>
        public readonly Enumerator GetEnumerator() => this;

        /// <summary>Advances to the next entry.</summary>
        /// <exception cref="FormatException">The block is not well formed.</exception>
        public bool MoveNext()
        {
            var span = _block.Span;
            if (_position >= span.Length)
            {
                return false;
            }

            var rest = span[_position..];
            if (rest.Length < 7 || rest[0] is not (BytesKind or TextKind))
            {
                throw new FormatException("header block is not well formed");
            }

            int keyLength = BinaryPrimitives.ReadUInt16BigEndian(rest[1..]);
            if (rest.Length < 7 + keyLength)
            {
                throw new FormatException("header block is not well formed");
            }

            var valueLength = BinaryPrimitives.ReadUInt32BigEndian(rest[(3 + keyLength)..]);
            if (valueLength > (uint)(rest.Length - 7 - keyLength))
            {
                throw new FormatException("header block is not well formed");
            }

            var key = Encoding.UTF8.GetString(rest.Slice(3, keyLength));
            Current = new Entry(key, rest[0] == TextKind, _block.Slice(_position + 7 + keyLength, (int)valueLength));
            _position += 7 + keyLength + (int)valueLength;
            return true;
        }
    }
}
