using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using Microsoft.Win32.SafeHandles;
using Zaichik.Server.Storage.Internal;

namespace Zaichik.Server.Storage;

/// <summary>
/// The compacted part of a topic's log (log compaction, <c>KeepLatestPerKey</c>): the messages a compaction pass kept
/// from below its cut address, in one file beside the segments, <c>compacted.&lt;generation&gt;</c>. Its pages have the
/// layout of log pages (<see cref="PageEntries"/>: length-prefixed <see cref="LogRecord"/> entries, each with its own
/// checksum, never across a page end; messages larger than a page split into fragments as in the log), so a reader
/// reads it as it reads the segments. The first <see cref="DataStart"/> bytes are the header:
/// <c>"ZKC1"[crc32c u32][generation i64][cut address i64][next sequence i64][first sequence i64][last sequence i64]
/// [count i64][data end i64][last timestamp i64]</c>, the checksum covering what follows it.
/// </summary>
/// <remarks>
/// A pass writes the next generation aside (<see cref="TemporaryName"/>), fsyncs it, renames it into place and fsyncs
/// the folder before the log is truncated at its cut, so a crash leaves either the old file with the whole log or the
/// new file with the log truncated or still to truncate (done at the next open). A generation that was replaced is
/// deleted once the last reader that started in it leaves. Immutable but for that reader count.
/// </remarks>
internal sealed class CompactedLog
{
    public const string Prefix = "compacted.";

    public const string TemporaryName = "compacted.tmp";

    /// <summary>Where the first page's entries begin: the header comes before.</summary>
    public const int DataStart = 128;

    private const int HeaderSize = 8 + (8 * sizeof(long));

    private static ReadOnlySpan<byte> Magic => "ZKC1"u8;

    private readonly Lock _lock = new();
    private int _readers;
    private bool _superseded;

    public CompactedLog(
        string path, int pageSizeBits, long generation, long cutAddress, long nextSequence, long firstSequence, long lastSequence, long count, long dataEnd, long lastTimestampMs)
    {
        Path = path;
        PageSizeBits = pageSizeBits;
        Generation = generation;
        CutAddress = cutAddress;
        NextSequence = nextSequence;
        FirstSequence = firstSequence;
        LastSequence = lastSequence;
        Count = count;
        DataEnd = dataEnd;
        LastTimestampMs = lastTimestampMs;
    }

    public string Path { get; }

    public int PageSizeBits { get; }

    public long Generation { get; }

    /// <summary>The log address the pass cut at: the log part begins here.</summary>
    public long CutAddress { get; }

    /// <summary>The sequence of the first message in the log after <see cref="CutAddress"/>: every one before it lives here or is gone.</summary>
    public long NextSequence { get; }

    /// <summary>The oldest message kept (<see cref="NextSequence"/> when there is none).</summary>
    public long FirstSequence { get; }

    /// <summary>The newest message kept (<see cref="NextSequence"/> - 1 when there is none).</summary>
    public long LastSequence { get; }

    /// <summary>Messages kept.</summary>
    public long Count { get; }

    /// <summary>Where the entries end: the file's size.</summary>
    public long DataEnd { get; }

    /// <summary>The newest message's timestamp, or 0.</summary>
    public long LastTimestampMs { get; }

    /// <summary>True when the header could not be read and was worked out from the entries.</summary>
    public bool HeaderRebuilt { get; private init; }

    public static string NameOf(long generation) => Prefix + generation.ToString(CultureInfo.InvariantCulture);

    /// <summary>Counts a reader that starts in this file; false when it was replaced and deleted already.</summary>
    public bool TryAddReader()
    {
        lock (_lock)
        {
            if (_superseded && _readers == 0)
            {
                return false;
            }

            _readers++;
            return true;
        }
    }

    /// <summary>A reader left it: deletes the file when it was replaced and was the last reader's.</summary>
    public void RemoveReader()
    {
        lock (_lock)
        {
            if (--_readers > 0 || !_superseded)
            {
                return;
            }
        }

        Delete();
    }

    /// <summary>A newer generation took its place: deleted now, or when its last reader leaves.</summary>
    public void Supersede()
    {
        lock (_lock)
        {
            _superseded = true;
            if (_readers > 0)
            {
                return;
            }
        }

        Delete();
    }

    /// <summary>The header of a file with these fields.</summary>
    public static byte[] Header(long generation, long cutAddress, long nextSequence, long firstSequence, long lastSequence, long count, long dataEnd, long lastTimestampMs)
    {
        var header = new byte[DataStart];
        Magic.CopyTo(header);
        var fields = header.AsSpan(8);
        BinaryPrimitives.WriteInt64LittleEndian(fields, generation);
        BinaryPrimitives.WriteInt64LittleEndian(fields[8..], cutAddress);
        BinaryPrimitives.WriteInt64LittleEndian(fields[16..], nextSequence);
        BinaryPrimitives.WriteInt64LittleEndian(fields[24..], firstSequence);
        BinaryPrimitives.WriteInt64LittleEndian(fields[32..], lastSequence);
        BinaryPrimitives.WriteInt64LittleEndian(fields[40..], count);
        BinaryPrimitives.WriteInt64LittleEndian(fields[48..], dataEnd);
        BinaryPrimitives.WriteInt64LittleEndian(fields[56..], lastTimestampMs);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), LogRecord.Checksum(header.AsSpan(8, HeaderSize - 8)));
        return header;
    }

    /// <summary>
    /// The newest compacted file in <paramref name="directory"/>, or null when there is none; older generations and a
    /// temporary file a pass left are deleted. A file whose header is damaged is kept for its entries, which carry their
    /// own checksums: its fields are worked out by reading them, taking the log's begin address as its cut.
    /// </summary>
    /// <exception cref="IOException">The newest file cannot be read at all.</exception>
    public static CompactedLog? Load(string directory, int pageSizeBits, long logBeginAddress, long logFirstSequence)
    {
        var generations = new List<(long Generation, string Path)>();
        foreach (var path in System.IO.Directory.EnumerateFiles(directory, Prefix + "*"))
        {
            var name = System.IO.Path.GetFileName(path);
            if (name == TemporaryName)
            {
                File.Delete(path);
            }
            else if (long.TryParse(name.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var generation))
            {
                generations.Add((generation, path));
            }
        }

        if (generations.Count == 0)
        {
            return null;
        }

        generations.Sort((a, b) => a.Generation.CompareTo(b.Generation));
        var (newest, newestPath) = generations[^1];
        FileKinds.RequireFileOrMissing(newestPath);
        var loaded = Read(newestPath, newest, pageSizeBits, logBeginAddress, logFirstSequence);
        foreach (var (_, older) in generations.SkipLast(1))
        {
            File.Delete(older);
        }

        return loaded;
    }

    /// <summary>
    /// The offset of the page a reader looking for the first message after the target starts at: the last page whose
    /// first message is still before it (<paramref name="before"/> holds), found by a binary search over pages. A page
    /// that cannot be read counts as after the target, so damage only makes the search start earlier.
    /// </summary>
    public long Seek(SafeFileHandle file, Func<long, long, bool> before)
    {
        var pageSize = 1 << PageSizeBits;
        var buffer = ArrayPool<byte>.Shared.Rent(pageSize);
        try
        {
            var low = 0L;
            var high = (DataEnd - 1) >> PageSizeBits;
            var found = (long)DataStart;
            while (low <= high)
            {
                var page = low + ((high - low) / 2);
                if (FirstOnPage(file, page << PageSizeBits, buffer.AsSpan(0, pageSize)) is { } first && before(first.Sequence, first.TimestampMs))
                {
                    found = Math.Max(DataStart, page << PageSizeBits);
                    low = page + 1;
                }
                else
                {
                    high = page - 1;
                }
            }

            return found;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Reads the page at <paramref name="page"/> into <paramref name="buffer"/>, zero past the end of the file; false when the read failed.</summary>
    public static bool TryReadPage(SafeFileHandle file, long page, Span<byte> buffer)
    {
        buffer.Clear();
        try
        {
            var read = 0;
            while (read < buffer.Length)
            {
                var n = RandomAccess.Read(file, buffer[read..], page + read);
                if (n == 0)
                {
                    break;
                }

                read += n;
            }

            return true;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private (long Sequence, long TimestampMs)? FirstOnPage(SafeFileHandle file, long page, Span<byte> buffer)
    {
        if (!TryReadPage(file, page, buffer))
        {
            return null;
        }

        var entries = new PageEntries(buffer[..(int)Math.Min(buffer.Length, DataEnd - page)], page, page == 0 ? DataStart : 0);
        while (entries.Next(out _, out var entry) == PageStep.Entry)
        {
            if (LogRecord.TryRead(entry, out var record))
            {
                return (record.Sequence, record.TimestampMs);
            }
        }

        return null;
    }

    private static CompactedLog Read(string path, long generation, int pageSizeBits, long logBeginAddress, long logFirstSequence)
    {
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var length = RandomAccess.GetLength(file);
        var header = new byte[HeaderSize];
        var read = length >= HeaderSize ? RandomAccess.Read(file, header, 0) : 0;
        if (read == HeaderSize && header.AsSpan(0, 4).SequenceEqual(Magic)
            && BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4)) == LogRecord.Checksum(header.AsSpan(8)))
        {
            var fields = header.AsSpan(8);
            var dataEnd = BinaryPrimitives.ReadInt64LittleEndian(fields[48..]);
            if (BinaryPrimitives.ReadInt64LittleEndian(fields) == generation && dataEnd >= DataStart && dataEnd <= length)
            {
                return new CompactedLog(path, pageSizeBits, generation,
                    cutAddress: BinaryPrimitives.ReadInt64LittleEndian(fields[8..]),
                    nextSequence: BinaryPrimitives.ReadInt64LittleEndian(fields[16..]),
                    firstSequence: BinaryPrimitives.ReadInt64LittleEndian(fields[24..]),
                    lastSequence: BinaryPrimitives.ReadInt64LittleEndian(fields[32..]),
                    count: BinaryPrimitives.ReadInt64LittleEndian(fields[40..]),
                    dataEnd,
                    lastTimestampMs: BinaryPrimitives.ReadInt64LittleEndian(fields[56..]));
            }
        }

        return Rebuild(file, path, generation, pageSizeBits, length, logBeginAddress, logFirstSequence);
    }

    /// <summary>The fields of a file whose header is damaged, from the entries that pass their checksums.</summary>
    private static CompactedLog Rebuild(SafeFileHandle file, string path, long generation, int pageSizeBits, long length, long logBeginAddress, long logFirstSequence)
    {
        var pageSize = 1 << pageSizeBits;
        var buffer = ArrayPool<byte>.Shared.Rent(pageSize);
        long first = 0, last = 0, count = 0, lastTimestampMs = 0;
        try
        {
            for (var page = 0L; page < length; page += pageSize)
            {
                var span = buffer.AsSpan(0, pageSize);
                if (!TryReadPage(file, page, span))
                {
                    continue;
                }

                var entries = new PageEntries(span[..(int)Math.Min(pageSize, length - page)], page, page == 0 ? DataStart : 0);
                while (entries.Next(out _, out var entry) == PageStep.Entry)
                {
                    if (!LogRecord.TryRead(entry, out var record) || record.Sequence <= last || record.Kind == LogRecordKind.Continuation)
                    {
                        continue;
                    }

                    first = first == 0 ? record.Sequence : first;
                    last = record.Sequence;
                    lastTimestampMs = record.TimestampMs;
                    count++;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        var next = Math.Max(last + 1, logFirstSequence);
        return new CompactedLog(path, pageSizeBits, generation, logBeginAddress, next, count == 0 ? next : first, count == 0 ? next - 1 : last, count, length, lastTimestampMs)
        {
            HeaderRebuilt = true,
        };
    }

    private void Delete()
    {
        try
        {
            File.Delete(Path);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            // Deleted at the next open of the log, which keeps only the newest generation.
        }
    }
}
