using System.Buffers;
using System.Collections;
using System.Text;
using Zaichik.Protocol;

namespace Zaichik.Client;

/// <summary>One header of a message: a key and a value that is either UTF-8 text or raw bytes.</summary>
/// <param name="Key">Its key; keys may repeat, in the order they were added.</param>
/// <param name="Value">Its value's bytes (UTF-8 for a text value).</param>
/// <param name="IsText">True for a text value.</param>
public readonly record struct ZaichikHeader(string Key, ReadOnlyMemory<byte> Value, bool IsText)
{
    /// <summary>The value decoded as UTF-8.</summary>
    public string Text => Encoding.UTF8.GetString(Value.Span);
}

/// <summary>
/// A message's headers: an ordered list of keys with text or byte values, stored and delivered with the message. Keys
/// are case-sensitive and may repeat; the lookups return the first match. A publish's headers, encoded, must fit in
/// <see cref="ZaichikClientOptions.MaxHeadersSize"/> (and the server's <c>MaxHeadersSize</c>, 16 KiB by default).
/// </summary>
public sealed class ZaichikHeaders : IReadOnlyList<ZaichikHeader>
{
    private readonly List<ZaichikHeader> _entries = [];

    /// <summary>Creates an empty set of headers.</summary>
    public ZaichikHeaders()
    {
    }

    /// <summary>How many headers there are.</summary>
    public int Count => _entries.Count;

    /// <summary>The bytes these headers take on the wire.</summary>
    public int EncodedSize { get; private set; }

    /// <inheritdoc />
    public ZaichikHeader this[int index] => _entries[index];

    /// <summary>Adds a text header.</summary>
    /// <exception cref="ArgumentException">The key is empty.</exception>
    public ZaichikHeaders Add(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return Add(key, Encoding.UTF8.GetBytes(value), isText: true);
    }

    /// <summary>Adds a header with a byte value, which it copies.</summary>
    /// <exception cref="ArgumentException">The key is empty.</exception>
    public ZaichikHeaders Add(string key, ReadOnlySpan<byte> value) => Add(key, value.ToArray(), isText: false);

    /// <summary>Adds a header as it is.</summary>
    public ZaichikHeaders Add(ZaichikHeader header) => Add(header.Key, header.Value, header.IsText);

    /// <summary>Adds a header or, when one with this key exists, replaces the first such with a text value.</summary>
    public ZaichikHeaders Set(string key, string value)
    {
        var index = IndexOf(key);
        if (index < 0)
        {
            return Add(key, value);
        }

        var old = _entries[index];
        var bytes = Encoding.UTF8.GetBytes(value);
        EncodedSize += bytes.Length - old.Value.Length;
        _entries[index] = new ZaichikHeader(key, bytes, IsText: true);
        return this;
    }

    /// <summary>The first text (or byte) value under <paramref name="key"/>, decoded as UTF-8.</summary>
    public bool TryGetText(string key, out string value)
    {
        var index = IndexOf(key);
        value = index < 0 ? string.Empty : _entries[index].Text;
        return index >= 0;
    }

    /// <summary>The first value under <paramref name="key"/> decoded as UTF-8, or null.</summary>
    public string? GetText(string key) => TryGetText(key, out var value) ? value : null;

    /// <summary>The first value under <paramref name="key"/> as bytes.</summary>
    public bool TryGetBytes(string key, out ReadOnlyMemory<byte> value)
    {
        var index = IndexOf(key);
        value = index < 0 ? default : _entries[index].Value;
        return index >= 0;
    }

    /// <inheritdoc />
    public IEnumerator<ZaichikHeader> GetEnumerator() => _entries.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <inheritdoc />
    public override string ToString() => string.Join(", ", _entries.Select(h => h.IsText ? $"{h.Key}={h.Text}" : $"{h.Key}=({h.Value.Length} bytes)"));

    /// <summary>Reads a header block the protocol decoder already validated; values point into it.</summary>
    internal static ZaichikHeaders FromBlock(ReadOnlyMemory<byte> block)
    {
        var headers = new ZaichikHeaders();
        foreach (var entry in HeaderBlock.Enumerate(block))
        {
            headers.Add(entry.Key, entry.Value, entry.IsText);
        }

        return headers;
    }

    /// <summary>Encodes the headers as a header block.</summary>
    internal ReadOnlyMemory<byte> ToBlock()
    {
        if (_entries.Count == 0)
        {
            return default;
        }

        var block = new ArrayBufferWriter<byte>(EncodedSize);
        foreach (var header in _entries)
        {
            HeaderBlock.WriteEntry(block, header.Key, header.IsText, header.Value.Span);
        }

        return block.WrittenMemory;
    }

    private ZaichikHeaders Add(string key, ReadOnlyMemory<byte> value, bool isText)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        _entries.Add(new ZaichikHeader(key, value, isText));
        EncodedSize += HeaderBlock.EntrySize(Encoding.UTF8.GetByteCount(key), value.Length);
        return this;
    }

    private int IndexOf(string key)
    {
        for (var i = 0; i < _entries.Count; i++)
        {
            if (string.Equals(_entries[i].Key, key, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }
}
