namespace Zaichik.Server.Storage;

/// <summary>How each topic's FasterLog is sized. Every topic gets the same settings.</summary>
public sealed record StorageOptions
{
    /// <summary>Log page size as a power of two. A record (key, payload and about 30 bytes of headers) must fit in one page (a larger message is split into fragments, one per page). Default 14 (16 KiB).</summary>
    public int PageSizeBits { get; set; } = 14;

    /// <summary>
    /// In-memory tail of each log as a power of two. An idle topic holds about two pages; a busy one grows up to
    /// this. Default 20 (1 MiB).
    /// </summary>
    public int MemorySizeBits { get; set; } = 20;

    /// <summary>Segment file size as a power of two; disk is freed a whole segment at a time. Default 22 (4 MiB).</summary>
    public int SegmentSizeBits { get; set; } = 22;

    /// <summary>
    /// Most file descriptors the storage layer holds at once, across all topics (segment files, commit records, consumer
    /// positions). 0 (the default) takes half of what the process may open (<c>ulimit -n</c>) beyond a reserve for
    /// connections and the runtime. Past it, idle topics are closed to make room, and a request that still finds none gets
    /// StorageFailure instead of the process running out of descriptors.
    /// </summary>
    public int MaxOpenFiles { get; set; }

    /// <summary>Bytes of the largest record (headers included) a log page can take.</summary>
    internal int MaxRecordSize => (1 << PageSizeBits) - 64;

    internal IEnumerable<string> Validate()
    {
        if (PageSizeBits is < 12 or > 26)
        {
            yield return $"Storage:PageSizeBits is {PageSizeBits}; it must be between 12 and 26";
        }

        if (MemorySizeBits < PageSizeBits + 1 || MemorySizeBits > 34)
        {
            yield return $"Storage:MemorySizeBits is {MemorySizeBits}; it must hold at least two pages (>= PageSizeBits + 1) and be at most 34";
        }

        if (MaxOpenFiles < 0)
        {
            yield return $"Storage:MaxOpenFiles is {MaxOpenFiles}; it must be 0 (automatic) or positive";
        }

        if (SegmentSizeBits < PageSizeBits || SegmentSizeBits > 34)
        {
            yield return $"Storage:SegmentSizeBits is {SegmentSizeBits}; it must be at least PageSizeBits and at most 34";
        }
    }
}
