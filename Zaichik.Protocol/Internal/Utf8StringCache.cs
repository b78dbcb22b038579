using System.Text;

namespace Zaichik.Protocol.Internal;

/// <summary>
/// Remembers the last few decoded strings so that a connection publishing to or receiving from the same
/// topics decodes each name once instead of allocating a string per frame. Not thread-safe: one per reader.
/// </summary>
internal sealed class Utf8StringCache
{
    private const int Slots = 8;
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly byte[][] _keys = new byte[Slots][];
    private readonly string[] _values = new string[Slots];
    private int _next;

    public static string Decode(Utf8StringCache? cache, ReadOnlySpan<byte> utf8) =>
        cache is null ? DecodeStrict(utf8) : cache.Get(utf8);

    private string Get(ReadOnlySpan<byte> utf8)
    {
        for (var i = 0; i < Slots; i++)
        {
            var key = _keys[i];
            if (key is not null && utf8.SequenceEqual(key))
            {
                return _values[i];
            }
        }

        var value = DecodeStrict(utf8);
        if (utf8.Length <= 256)
        {
            _keys[_next] = utf8.ToArray();
            _values[_next] = value;
            _next = (_next + 1) % Slots;
        }

        return value;
    }

    private static string DecodeStrict(ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty)
        {
            return string.Empty;
        }

        try
        {
            return StrictUtf8.GetString(utf8);
        }
        catch (DecoderFallbackException)
        {
            throw new ProtocolViolationException(ErrorCode.MalformedFrame, "string field is not valid UTF-8");
        }
    }
}
