using System.Buffers.Binary;

namespace Zaichik.Server.Storage.Internal;

/// <summary>
/// Walks the entries of one log page as FasterLog lays them out: <c>[length i32][entry][padding to 4 bytes]</c>, back
/// to back, never across the end of a page, the rest of a page zero. It trusts nothing it reads: a length of zero
/// ends the page, as damaged unless only zeros follow it (padding, or an unwritten page), and so does a length that is
/// negative or runs past the page. Entries are not checked here; their own checksums are (<see cref="LogRecord.TryRead"/>).
/// </summary>
internal ref struct PageEntries
{
    /// <summary>FasterLog's length prefix of every entry.</summary>
    public const int EntryHeaderSize = sizeof(int);

    private readonly ReadOnlySpan<byte> _page;
    private readonly long _pageAddress;
    private int _offset;

    /// <param name="page">The whole page, zero past what was written.</param>
    /// <param name="pageAddress">The log address of the page's first byte.</param>
    /// <param name="startOffset">Where in the page to begin.</param>
    public PageEntries(ReadOnlySpan<byte> page, long pageAddress, int startOffset)
    {
        _page = page;
        _pageAddress = pageAddress;
        _offset = startOffset;
    }

    /// <summary>The address of the next entry (or the end of the page).</summary>
    public readonly long NextAddress => _pageAddress + _offset;

    /// <summary>The next entry; <see cref="PageStep.End"/> when the page holds no more; <see cref="PageStep.Damaged"/> when its framing is broken.</summary>
    public PageStep Next(out long address, out ReadOnlySpan<byte> entry)
    {
        address = _pageAddress + _offset;
        entry = default;
        if (_offset + EntryHeaderSize > _page.Length)
        {
            _offset = _page.Length;
            return PageStep.End;
        }

        var length = BinaryPrimitives.ReadInt32LittleEndian(_page[_offset..]);
        if (length == 0)
        {
            // Padding is zeros to the end of the page; anything else after a zero length means the length was zeroed.
            var damaged = _page[_offset..].ContainsAnyExcept((byte)0);
            _offset = _page.Length;
            return damaged ? PageStep.Damaged : PageStep.End;
        }

        if (length < 0 || length > _page.Length - _offset - EntryHeaderSize)
        {
            _offset = _page.Length;
            return PageStep.Damaged;
        }

        entry = _page.Slice(_offset + EntryHeaderSize, length);
        _offset = Math.Min(_page.Length, _offset + EntryHeaderSize + Align(length));
        return PageStep.Entry;
    }

    /// <summary>The bytes an entry of <paramref name="length"/> occupies, its length prefix and padding included.</summary>
    public static int Footprint(int length) => EntryHeaderSize + Align(length);

    private static int Align(int length) => (length + 3) & ~3;
}

/// <summary>What <see cref="PageEntries.Next"/> found.</summary>
internal enum PageStep
{
    Entry,
    End,
    Damaged,
}
