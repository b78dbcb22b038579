using System.Buffers;
using FASTER.core;

namespace Zaichik.Server.Storage.Internal;

/// <summary>
/// Works out, from the segment files themselves, what a topic's log holds before FasterLog is opened on it, the way
/// Kafka recovers a log after an unclean shutdown: it checks every record it reads by its checksum and its sequence,
/// steps over what is damaged, and truncates only what is. The newest commit record is a hint, never the truth: a log
/// closed cleanly is trusted up to its last page, which is still checked; a log that was not is scanned from its last
/// commit to the end of its files, so records flushed after that commit are kept; a log whose commit record is gone
/// is scanned from its first segment, never started empty over existing data. Every loss is a <see cref="LogHole"/>.
/// </summary>
internal sealed class LogRecovery
{
    /// <summary>FasterLog's first address (page 0 starts with a reserved header).</summary>
    public const long FirstAddress = 64;

    /// <summary>How far back a search for the record before a point goes before it gives up (pages).</summary>
    private const int LookBackPages = 64;

    private readonly SegmentFiles _files;
    private readonly int _pageSizeBits;
    private readonly int _segmentSizeBits;
    private readonly byte[] _page;
    private readonly List<RecoveredHole> _holes = [];

    private LogRecovery(SegmentFiles files, int pageSizeBits, int segmentSizeBits)
    {
        _files = files;
        _pageSizeBits = pageSizeBits;
        _segmentSizeBits = segmentSizeBits;
        _page = ArrayPool<byte>.Shared.Rent(1 << pageSizeBits);
    }

    private int PageSize => 1 << _pageSizeBits;

    /// <summary>Recovers the log in <paramref name="files"/>' folder; see the class summary.</summary>
    /// <param name="latest">The newest commit record, or null when the commit file is missing, empty or damaged.</param>
    /// <exception cref="WrongFileKindException">A segment path is not a regular file.</exception>
    /// <param name="commitFileExisted">The commit file was there before this open: a log without a readable commit record in it may have handed out sequences.</param>
    public static RecoveredLog Run(SegmentFiles files, FasterLogRecoveryInfo? latest, int pageSizeBits, int segmentSizeBits, bool commitFileExisted = true)
    {
        var recovery = new LogRecovery(files, pageSizeBits, segmentSizeBits);
        try
        {
            return recovery.Run(latest, commitFileExisted);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(recovery._page);
        }
    }

    private RecoveredLog Run(FasterLogRecoveryInfo? latest, bool commitFileExisted)
    {
        var segments = SegmentFiles.List(_files.Directory);
        foreach (var segment in segments)
        {
            FileKinds.RequireFileOrMissing(_files.PathOf(segment));
        }

        var cookie = latest is { } info ? CommitCookie.TryRead(info.Cookie) : null;
        var hint = cookie is null ? null : latest;
        if (segments.Count == 0)
        {
            return Empty(hint, cookie, commitFileExisted);
        }

        var lastSegment = segments[^1];
        var physicalEnd = (((long)lastSegment) << _segmentSizeBits) + Math.Max(0, _files.Length(lastSegment));
        var firstPresent = Math.Max(FirstAddress, ((long)segments[0]) << _segmentSizeBits);
        var begin = hint is { } h && h.BeginAddress >= firstPresent && h.BeginAddress <= physicalEnd ? h.BeginAddress : firstPresent;

        // Where checking starts: the last page of a clean log, the last commit of a log that was not closed (records
        // flushed after it are kept), or the beginning when nothing can be trusted.
        // Closed cleanly: everything it handed out was committed. Trusted: its files also still reach what the commit says.
        var closedCleanly = cookie is { Clean: true };
        var clean = closedCleanly && hint!.Value.UntilAddress <= physicalEnd && SegmentOf(hint.Value.UntilAddress) >= lastSegment;
        long scanFrom;
        string mode;
        if (hint is { } trusted && trusted.UntilAddress >= begin)
        {
            scanFrom = Math.Max(begin, PageStart(Math.Min(trusted.UntilAddress, physicalEnd)));
            mode = clean ? "closed cleanly; its last page checked" : "not closed cleanly; checked from its last commit";
        }
        else
        {
            scanFrom = begin;
            mode = "its commit record is missing or unreadable; every segment checked";
        }

        // Missing segments first, so that their holes carry that reason rather than the scan's "damaged records".
        for (var segment = segments[0]; segment < lastSegment; segment++)
        {
            if (!segments.Contains(segment) && ((long)segment + 1) << _segmentSizeBits > begin)
            {
                MissingSegment(segment, begin);
            }
        }

        if (scanFrom > begin && SplitMessageStart(scanFrom, begin) is { } start)
        {
            // The check must not begin inside a split message: it starts from that message's first fragment.
            scanFrom = start;
        }

        var scan = new Scan(this, begin, scanFrom);
        if (scanFrom > begin)
        {
            scan.Previous = LastBefore(scanFrom, begin);
        }
        else if (cookie is { FirstSequence: > 1 } first)
        {
            // What the log's first sequence was, so that damage at its very start is reported with its range.
            scan.Previous = new Found(first.FirstSequence - 1, 0, begin);
        }

        scan.Run(Math.Max(scanFrom, PageEnd(physicalEnd - 1)));

        var lastSequence = scan.Last?.Sequence ?? scan.Previous?.Sequence ?? (cookie is { } c && scanFrom == begin ? c.FirstSequence - 1 : 0);
        var firstSequence = scanFrom == begin
            ? scan.First?.Sequence ?? lastSequence + 1
            : cookie?.FirstSequence ?? FirstAfter(begin, scanFrom)?.Sequence ?? lastSequence + 1;

        // Sequences that may have been handed out but are not on disk: up to the commit's reservation when the log was
        // not closed, everything the commit says was appended in any case.
        var next = Math.Max(lastSequence + 1, (cookie?.LastSequence ?? 0) + 1);
        if (cookie is { } known && !closedCleanly)
        {
            next = Math.Max(next, known.ReservedUntil);
        }
        else if (cookie is null)
        {
            // The reservation was lost with the commit record: skip as far as any block could have reached.
            next = Math.Max(next, lastSequence + 1 + SequenceReservation.MaximumBlock);
        }

        if (next > lastSequence + 1)
        {
            _holes.Add(new RecoveredHole(
                new LogHole(lastSequence + 1, next - 1),
                cookie is null ? "may have been handed out before a stop that left no readable commit record; none of them is on disk"
                    : closedCleanly ? "were lost: the end of the log is missing (its files were truncated)"
                    : "are not on disk after an unclean stop: unflushed when it stopped, or reserved and never used"));
        }

        var tail = scan.ValidEnd;
        return new RecoveredLog(
            BeginAddress: begin,
            TailAddress: tail,
            PhysicalEnd: physicalEnd,
            FirstSequence: Math.Min(firstSequence, next),
            NextSequence: next,
            // (The last page checked may hold no message, when the log ends at a page's start: the newest is the one before it.)
            LastTimestampMs: Math.Max(scan.LastTimestampMs, scan.Previous?.TimestampMs ?? 0),
            CommitNum: Math.Max(latest?.CommitNum ?? 0, 0) + 1,
            Clean: clean,
            Mode: mode,
            ScannedBytes: scan.ScannedBytes,
            Holes: _holes);
    }

    private RecoveredLog Empty(FasterLogRecoveryInfo? hint, CommitCookie? cookie, bool commitFileExisted)
    {
        // Nothing on disk. If a commit says there was something, all of it is gone; new records go after it. A log that
        // was opened before and never committed may have handed out sequences: they are skipped, as with a lost commit.
        var tail = hint?.UntilAddress ?? FirstAddress;
        var next = Math.Max(cookie?.LastSequence + 1 ?? 1, cookie is { Clean: false } c ? c.ReservedUntil : 1);
        if (cookie is { } known && next > known.FirstSequence)
        {
            _holes.Add(new RecoveredHole(new LogHole(known.FirstSequence, next - 1), "were lost: every segment file of the log is missing"));
        }
        else if (cookie is null && commitFileExisted)
        {
            next = 1 + SequenceReservation.MaximumBlock;
            _holes.Add(new RecoveredHole(new LogHole(1, next - 1), "may have been handed out before a stop that left no readable commit record; none of them is on disk"));
        }

        return new RecoveredLog(tail, tail, 0, next, next, 0, Math.Max(hint?.CommitNum ?? 0, 0) + 1, cookie?.Clean ?? !commitFileExisted,
            "no segment files", 0, _holes);
    }

    /// <summary>A segment between present ones is gone: everything in it is a hole, bounded by its neighbours' sequences.</summary>
    private void MissingSegment(int segment, long begin)
    {
        var from = Math.Max(begin, ((long)segment) << _segmentSizeBits);
        var to = ((long)segment + 1) << _segmentSizeBits;
        var before = LastBefore(from, begin);
        var after = FirstAfter(to, long.MaxValue);
        var first = (before?.Sequence ?? 0) + 1;
        if (after is { } next && next.Sequence > first)
        {
            _holes.Add(new RecoveredHole(new LogHole(first, next.Sequence - 1, from, to), $"were lost: segment file {SegmentFiles.Prefix}{segment} is missing"));
        }
    }

    /// <summary>The last complete record before <paramref name="address"/>, looking back page by page to <paramref name="floor"/>.</summary>
    private Found? LastBefore(long address, long floor)
    {
        var lowest = Math.Max(PageStart(floor), PageStart(address - 1) - (LookBackPages * (long)PageSize));
        for (var page = PageStart(address - 1); page >= lowest && page >= 0; page -= PageSize)
        {
            Found? last = null;
            var entries = Entries(page, Math.Max(page, floor));
            while (entries.Next(out var entryAddress, out var entry) == PageStep.Entry && entryAddress < address)
            {
                if (LogRecord.TryRead(entry, out var record))
                {
                    last = new Found(record.Sequence, record.TimestampMs, entries.NextAddress);
                }
            }

            if (last is not null)
            {
                return last;
            }
        }

        return null;
    }

    /// <summary>
    /// When the last record before <paramref name="address"/> belongs to a message split over several entries, the
    /// address of that message's first fragment (looking back at most as far as the largest message reaches); else null.
    /// </summary>
    private long? SplitMessageStart(long address, long floor)
    {
        long? sequence = null;
        var lowest = Math.Max(PageStart(floor), PageStart(address - 1) - (LookBackPages * (long)PageSize));
        for (var page = PageStart(address - 1); page >= lowest && page >= 0; page -= PageSize)
        {
            long? first = null;
            LogRecordKind? lastKind = null;
            long lastSequence = 0;
            var entries = Entries(page, Math.Max(page, floor));
            while (entries.Next(out var entryAddress, out var entry) == PageStep.Entry && entryAddress < address)
            {
                if (LogRecord.TryRead(entry, out var record))
                {
                    lastKind = record.Kind;
                    lastSequence = record.Sequence;
                    if (record.Kind == LogRecordKind.First && (sequence is null || record.Sequence == sequence))
                    {
                        first = entryAddress;
                    }
                }
            }

            if (sequence is null)
            {
                if (lastKind is null)
                {
                    continue;
                }

                if (lastKind == LogRecordKind.Whole)
                {
                    return null;
                }

                sequence = lastSequence;
            }

            if (first is { } found)
            {
                return found;
            }
        }

        return null;
    }

    /// <summary>The first record at or after <paramref name="address"/>, looking forward page by page up to <paramref name="limit"/>.</summary>
    private Found? FirstAfter(long address, long limit)
    {
        var lastSegment = SegmentFiles.List(_files.Directory).LastOrDefault(-1);
        var end = Math.Min(limit, ((long)lastSegment + 1) << _segmentSizeBits);
        for (var page = PageStart(address); page < end; page += PageSize)
        {
            var entries = Entries(page, Math.Max(page, address));
            while (entries.Next(out _, out var entry) == PageStep.Entry)
            {
                if (LogRecord.TryRead(entry, out var record))
                {
                    return new Found(record.Sequence, record.TimestampMs, entries.NextAddress);
                }
            }
        }

        return null;
    }

    /// <summary>The entries of the page at <paramref name="page"/> from <paramref name="from"/>; an unreadable page has none.</summary>
    private PageEntries Entries(long page, long from)
    {
        var size = ReadPage(page);
        return new PageEntries(_page.AsSpan(0, PageSize), page, size < 0 ? PageSize : (int)Math.Max(FirstAddress * (page == 0 ? 1 : 0), from - page));
    }

    /// <summary>Reads a page into the buffer, zero past what the file holds; -1 when it cannot be read.</summary>
    private int ReadPage(long page)
    {
        var buffer = _page.AsSpan(0, PageSize);
        buffer.Clear();
        try
        {
            var read = _files.Read(SegmentOf(page), page & ((1L << _segmentSizeBits) - 1), buffer);
            return Math.Max(read, 0);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException && exception is not WrongFileKindException and not StorageExhaustedException)
        {
            return -1;
        }
    }

    private int SegmentOf(long address) => (int)(address >> _segmentSizeBits);

    private long PageStart(long address) => address >> _pageSizeBits << _pageSizeBits;

    private long PageEnd(long address) => PageStart(address) + PageSize;

    private readonly record struct Found(long Sequence, long TimestampMs, long End);

    /// <summary>One pass over pages, keeping what is valid and turning what is not into holes.</summary>
    private sealed class Scan
    {
        private readonly LogRecovery _recovery;
        private readonly long _begin;
        private readonly long _from;
        private long _damagedFrom = -1;
        private Fragmented? _fragmented;

        public Scan(LogRecovery recovery, long begin, long from)
        {
            _recovery = recovery;
            _begin = begin;
            _from = from;
            ValidEnd = from;
        }

        public Found? Previous { get; set; }

        public Found? First { get; private set; }

        public Found? Last { get; private set; }

        /// <summary>The end of the last complete message: where the recovered log ends.</summary>
        public long ValidEnd { get; private set; }

        public long LastTimestampMs { get; private set; }

        public long ScannedBytes { get; private set; }

        private long LastSequence => Last?.Sequence ?? Previous?.Sequence ?? 0;

        public void Run(long end)
        {
            for (var page = _recovery.PageStart(_from); page < end; page += _recovery.PageSize)
            {
                var size = _recovery.ReadPage(page);
                ScannedBytes += _recovery.PageSize;
                var start = Math.Max(page == 0 ? FirstAddress : page, Math.Max(_from, _begin));
                if (size < 0)
                {
                    Damaged(start);
                    continue;
                }

                var entries = new PageEntries(_recovery._page.AsSpan(0, _recovery.PageSize), page, (int)(start - page));
                while (true)
                {
                    var step = entries.Next(out var address, out var entry);
                    if (step == PageStep.End)
                    {
                        break;
                    }

                    if (step == PageStep.Damaged || !LogRecord.TryRead(entry, out var record) || record.Sequence < LastSequence
                        || (record.Sequence == LastSequence && record.Kind != LogRecordKind.Continuation))
                    {
                        Damaged(address);
                        if (step == PageStep.Damaged)
                        {
                            break;
                        }

                        continue;
                    }

                    Accept(record, address, entries.NextAddress);
                }
            }

            if (_fragmented is { } unfinished)
            {
                // The log ends inside a split message: its tail never reached the disk. It is cut; its sequence is lost.
                _recovery._holes.Add(new RecoveredHole(new LogHole(unfinished.Sequence, unfinished.Sequence, unfinished.Address, ValidEnd), "were lost: the end of a split message never reached the disk"));
                _fragmented = null;
            }
        }

        private void Accept(in LogRecord record, long address, long end)
        {
            if (record.Kind == LogRecordKind.Continuation)
            {
                if (_fragmented is not { } message || message.Sequence != record.Sequence || !message.Add(record.Part.Length))
                {
                    Damaged(address);
                    return;
                }

                if (!message.Complete)
                {
                    return;
                }

                _fragmented = null;
                Complete(record.Sequence, record.TimestampMs, message.Address, end);
                return;
            }

            if (_fragmented is { } unfinished)
            {
                // A new message began before the previous split one was complete.
                _recovery._holes.Add(new RecoveredHole(new LogHole(unfinished.Sequence, unfinished.Sequence, unfinished.Address, address), "were lost: a split message is missing fragments"));
                _fragmented = null;
            }

            if (record.Kind == LogRecordKind.First)
            {
                CloseDamage(record.Sequence, address);
                _fragmented = new Fragmented(record.Sequence, address, record.HeadersLength + record.PayloadLength, record.Part.Length);
                return;
            }

            Complete(record.Sequence, record.TimestampMs, address, end);
        }

        private void Complete(long sequence, long timestampMs, long address, long end)
        {
            CloseDamage(sequence, address);
            var found = new Found(sequence, timestampMs, end);
            First ??= found;
            Last = found;
            ValidEnd = end;
            LastTimestampMs = Math.Max(LastTimestampMs, timestampMs);
        }

        private void Damaged(long address)
        {
            if (_damagedFrom < 0)
            {
                _damagedFrom = Math.Max(address, ValidEnd);
            }
        }

        /// <summary>A valid message follows damage: the sequences between are a hole (if any are missing).</summary>
        private void CloseDamage(long sequence, long address)
        {
            var expected = LastSequence + 1;
            if (_damagedFrom >= 0 || (LastSequence > 0 && sequence > expected))
            {
                if (sequence > expected && LastSequence > 0)
                {
                    var from = _damagedFrom >= 0 ? _damagedFrom : ValidEnd;
                    _recovery._holes.Add(new RecoveredHole(new LogHole(expected, sequence - 1, from, address), "were lost: damaged records"));
                }

                _damagedFrom = -1;
            }
        }
    }

    /// <summary>A split message being checked: its content is its headers followed by its payload.</summary>
    private sealed class Fragmented(long sequence, long address, int contentLength, int received)
    {
        private int _received = received;

        public long Sequence { get; } = sequence;

        public long Address { get; } = address;

        public bool Complete => _received == contentLength;

        public bool Add(int part)
        {
            if (part > contentLength - _received)
            {
                return false;
            }

            _received += part;
            return true;
        }
    }
}

/// <summary>A hole recovery found, and why.</summary>
internal readonly record struct RecoveredHole(LogHole Hole, string Reason);

/// <summary>What <see cref="LogRecovery"/> found: where the log begins and ends, its sequences, and what it lost.</summary>
internal sealed record RecoveredLog(
    long BeginAddress,
    long TailAddress,
    long PhysicalEnd,
    long FirstSequence,
    long NextSequence,
    long LastTimestampMs,
    long CommitNum,
    bool Clean,
    string Mode,
    long ScannedBytes,
    IReadOnlyList<RecoveredHole> Holes);
