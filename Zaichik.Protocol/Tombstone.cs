using System.Buffers.Binary;

namespace Zaichik.Protocol;

/// <summary>
/// A tombstone deletes its key from a topic that keeps the latest value per key: a keyed message with an empty payload
/// and a header <see cref="HeaderKey"/> (any value, text or bytes).
/// </summary>
public static class Tombstone
{
    /// <summary>The header that marks a tombstone.</summary>
    public const string HeaderKey = "zaichik-tombstone";

    private static ReadOnlySpan<byte> HeaderKeyUtf8 => "zaichik-tombstone"u8;

    /// <summary>True when a message with this key, payload and header block is a tombstone.</summary>
    public static bool Is(bool hasKey, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> headers) =>
        hasKey && payload.IsEmpty && HasHeader(headers);

    /// <summary>True when <paramref name="headers"/> (a header block) has a <see cref="HeaderKey"/> entry; a block that is not well formed has none.</summary>
    public static bool HasHeader(ReadOnlySpan<byte> headers)
    {
        var position = 0;
        while (headers.Length - position >= 7)
        {
            var rest = headers[position..];
            int keyLength = BinaryPrimitives.ReadUInt16BigEndian(rest[1..]);
            if (rest.Length < 7 + keyLength)
            {
                return false;
            }

            var valueLength = BinaryPrimitives.ReadUInt32BigEndian(rest[(3 + keyLength)..]);
            if (valueLength > (uint)(rest.Length - 7 - keyLength))
            {
                return false;
            }

            if (rest.Slice(3, keyLength).SequenceEqual(HeaderKeyUtf8))
            {
                return true;
            }

            position += 7 + keyLength + (int)valueLength;
        }

        return false;
    }
}
