using System.Buffers;
using FASTER.core;
using Microsoft.Win32.SafeHandles;
using Zaichik.Server.Storage.Internal;

namespace Zaichik.Server.Storage;

/// <summary>
/// Reads a topic's messages in sequence order from a point onwards and follows the tail. Records still in memory come
/// from a FasterLog iterator, without a copy; records below the head address come straight from the segment files,
/// a page at a time into a pooled buffer that is returned as soon as the reader reaches memory again. Nothing a
/// damaged file holds can stop it: every entry is checked (framing, checksum, sequence order), a broken page is left
/// for the next one, and a gap in sequences that no known hole explains is reported to the log (once) as a new hole.
/// A reader that starts below the log's compacted part (<see cref="CompactedLog"/>) reads that file first, the same
/// way, then goes on in the log at its cut; it steps over whatever the topic's <see cref="Filter"/> says to.
/// </summary>
/// <remarks>
/// One caller at a time. After <see cref="TryRead"/> returns a message, call <see cref="Release"/> before anything
/// else: a message read from memory is valid only until then, and the log cannot evict its page meanwhile.
/// </remarks>
internal sealed class LogReader : IDisposable
{
    /// <summary>How long a reader waits before trying again after the storage layer ran out of descriptors.</summary>
    private static readonly TimeSpan ExhaustedRetryDelay = TimeSpan.FromMilliseconds(100);

    private readonly TopicLog _log;
    private readonly long _fromSequence;
    private readonly long _compactedOffsetAtStart;
    private readonly FragmentAssembler _fragments = new();
    private long _address;
    private long _lastSequence;
    private long _lastGoodEnd;
    private long _damagedFrom = -1;
    private long _skipBeforeTimestampMs = long.MinValue;
    private long _unkeyedFromSequence;
    private FasterLogScanIterator? _memory;
    private byte[]? _page;
    private long _pageAddress = -1;
    private bool _holding;
    private bool _exhausted;
    private bool _disposed;

    // While it reads the compacted part: that file, its descriptor once opened, where in it, and whether damage was met
    // since the last message (reported as a hole when the next one, or the end, bounds it).
    private CompactedLog? _compacted;
    private SafeFileHandle? _compactedFile;
    private long _compactedOffset;
    private long _compactedPage = -1;
    private bool _compactedDamage;

    /// <param name="compacted">The compacted part to read first, from <paramref name="compactedOffset"/>, counted as one of its readers already; null to read the log only.</param>
    internal LogReader(TopicLog log, long address, long fromSequence, CompactedLog? compacted = null, long compactedOffset = 0)
    {
        _log = log;
        _address = address;
        _lastGoodEnd = address;
        _fromSequence = fromSequence;
        _compacted = compacted;
        _compactedOffset = compactedOffset;
        _compactedOffsetAtStart = compactedOffset;
        Filter = log.ReadFilter;
    }

    /// <summary>
    /// The address of the next record to read: the log is never truncated past it. While the reader is in the compacted
    /// part, the cut it goes on from.
    /// </summary>
    public long Position => Volatile.Read(ref _compacted) is { } compacted ? compacted.CutAddress : Volatile.Read(ref _address);

    /// <summary>What the reader steps over; the log's <see cref="TopicLog.ReadFilter"/> unless set otherwise (null: nothing, for scans of everything stored).</summary>
    public IMessageFilter? Filter { get; set; }

    /// <summary>True while the reader is in the compacted part.</summary>
    public bool InCompacted => _compacted is not null;

    /// <summary>Whether the message <see cref="TryRead"/> returned last came from the compacted part.</summary>
    public bool LastFromCompacted { get; private set; }

    /// <summary>The address of the first entry of the message <see cref="TryRead"/> returned last.</summary>
    public long MessageAddress { get; private set; }

    /// <summary>The sequence of the last message read (delivered or skipped), or 0 before the first.</summary>
    public long LastSequence => _lastSequence;

    /// <summary>Messages stamped before this are skipped (a subscription that starts at a time).</summary>
    public void SkipBefore(long timestampMs) => _skipBeforeTimestampMs = timestampMs;

    /// <summary>Unkeyed messages before this sequence are skipped (keyed ones are not).</summary>
    public void SkipUnkeyedBefore(long sequence) => _unkeyedFromSequence = sequence;

    /// <summary>
    /// The next message, or false when none is readable now (wait with <see cref="WaitAsync"/>). The message's spans
    /// are valid until <see cref="Release"/>, which must follow at once, with no await in between.
    /// </summary>
    public bool TryRead(out LogMessage message)
    {
        message = default;
        while (!_disposed && !_log.IsDisposed)
        {
            if (_compacted is { } compacted)
            {
                var fromFile = ReadFromCompacted(compacted, out message);
                if (fromFile == Outcome.Again)
                {
                    continue;
                }

                LastFromCompacted = true;
                return fromFile == Outcome.Message;
            }

            LastFromCompacted = false;
            var address = Volatile.Read(ref _address);
            var begin = _log.BeginAddress;
            var stepped = _log.HoleList.IsEmpty ? address : _log.HoleList.StepOver(address);
            if (address < begin || stepped != address)
            {
                MoveTo(Math.Max(stepped, begin));
                continue;
            }

            if (address >= _log.TailAddress)
            {
                return false;
            }

            Outcome outcome;
            if (address < _log.HeadAddress)
            {
                if (_log.InMemory)
                {
                    // A Memory topic's evicted pages are gone: readers that fell behind skip to what is still held.
                    MoveTo(_log.HeadAddress);
                    continue;
                }

                outcome = ReadFromDisk(out message);
            }
            else
            {
                ReleasePage();
                outcome = ReadFromMemory(out message);
            }

            if (outcome != Outcome.Again)
            {
                return outcome == Outcome.Message;
            }
        }

        return false;
    }

    /// <summary>Ends the use of the message <see cref="TryRead"/> returned.</summary>
    public void Release()
    {
        if (_holding)
        {
            _holding = false;
            _memory!.UnsafeRelease();
        }

        _fragments.Reset();
    }

    /// <summary>Waits until more may be readable; false when the log has closed.</summary>
    public ValueTask<bool> WaitAsync(CancellationToken cancellationToken)
    {
        if (_disposed || _log.IsDisposed)
        {
            return ValueTask.FromResult(false);
        }

        if (_exhausted)
        {
            _exhausted = false;
            return DelayAsync(cancellationToken);
        }

        if (_compacted is not null)
        {
            return ValueTask.FromResult(true);
        }

        var address = Volatile.Read(ref _address);
        if (address < _log.HeadAddress && address < _log.TailAddress)
        {
            return ValueTask.FromResult(true);
        }

        _memory ??= _log.Scan(address);
        return WaitForMemoryAsync(_memory, cancellationToken);
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        Release();
        _disposed = true;
        if (_compacted is { } compacted)
        {
            CloseCompacted(compacted);
        }

        _memory?.Dispose();
        _memory = null;
        ReleasePage();
        _fragments.Dispose();
        _log.ReaderClosed();
    }

    private static async ValueTask<bool> DelayAsync(CancellationToken cancellationToken)
    {
        await Task.Delay(ExhaustedRetryDelay, cancellationToken).ConfigureAwait(false);
        return true;
    }

    private async ValueTask<bool> WaitForMemoryAsync(FasterLogScanIterator memory, CancellationToken cancellationToken)
    {
        try
        {
            return await memory.WaitAsync(cancellationToken).ConfigureAwait(false) && !_log.IsDisposed;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    private unsafe Outcome ReadFromMemory(out LogMessage message)
    {
        message = default;
        var memory = _memory ??= _log.Scan(Volatile.Read(ref _address));
        byte* entry;
        int length;
        long entryAddress;
        long nextAddress;
        try
        {
            if (!memory.UnsafeGetNext(out entry, out length, out entryAddress, out nextAddress))
            {
                // Nothing more in memory yet. The iterator may have stepped over page padding.
                Volatile.Write(ref _address, Math.Max(Volatile.Read(ref _address), memory.NextAddress));
                return Outcome.Wait;
            }
        }
        catch (FasterException)
        {
            // A page FasterLog could not read or parse (it loads from disk a page that fell out of memory under it):
            // the rest of the page is left, as when reading from the files.
            var at = Volatile.Read(ref _address);
            Damaged(at);
            MoveTo(((at >> _log.PageSizeBits) + 1) << _log.PageSizeBits);
            return Outcome.Again;
        }

        Volatile.Write(ref _address, nextAddress);
        var result = Accept(new ReadOnlySpan<byte>(entry, length), entryAddress, nextAddress, out message);
        if (result == Outcome.Message && !_fragments.Complete)
        {
            _holding = true;
        }
        else
        {
            memory.UnsafeRelease();
        }

        return result;
    }

    private Outcome ReadFromDisk(out LogMessage message)
    {
        message = default;
        var pageSizeBits = _log.PageSizeBits;
        var pageSize = 1 << pageSizeBits;
        var address = Volatile.Read(ref _address);
        var page = address >> pageSizeBits << pageSizeBits;
        if (_pageAddress != page)
        {
            DisposeMemoryIterator();
            _page ??= ArrayPool<byte>.Shared.Rent(pageSize);
            switch (_log.ReadPage(page, _page.AsSpan(0, pageSize)))
            {
                case PageRead.Exhausted:
                    _exhausted = true;
                    return Outcome.Wait;
                case PageRead.Failed:
                    Damaged(address);
                    MoveTo(page + pageSize);
                    return Outcome.Again;
            }

            _pageAddress = page;
        }

        var offset = (int)(address - page);
        if (page == 0 && offset < LogRecovery.FirstAddress)
        {
            offset = (int)LogRecovery.FirstAddress;
        }

        var entries = new PageEntries(_page.AsSpan(0, pageSize), page, offset);
        var step = entries.Next(out var entryAddress, out var entry);
        if (step != PageStep.Entry)
        {
            if (step == PageStep.Damaged)
            {
                Damaged(entryAddress);
            }

            MoveTo(page + pageSize);
            return Outcome.Again;
        }

        var next = entries.NextAddress;
        Volatile.Write(ref _address, next);
        return Accept(entry, entryAddress, next, out message);
    }

    /// <summary>The next entry of the compacted part, read a page at a time like the segment files; at its end, on to the log.</summary>
    private Outcome ReadFromCompacted(CompactedLog compacted, out LogMessage message)
    {
        message = default;
        if (_compactedOffset >= compacted.DataEnd)
        {
            LeaveCompacted(compacted);
            return Outcome.Again;
        }

        var pageSizeBits = _log.PageSizeBits;
        var pageSize = 1 << pageSizeBits;
        var page = _compactedOffset >> pageSizeBits << pageSizeBits;
        if (_compactedPage != page)
        {
            // The buffer is shared with pages of the segment files: it no longer holds one.
            _pageAddress = -1;
            if (_compactedFile is null)
            {
                try
                {
                    _compactedFile = _log.OpenCompactedFile(compacted);
                }
                catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
                {
                    // The file is gone or unreadable: everything it held is lost, and reported so.
                    _compactedDamage = true;
                    _compactedOffset = compacted.DataEnd;
                    return Outcome.Again;
                }

                if (_compactedFile is null)
                {
                    _exhausted = true;
                    return Outcome.Wait;
                }
            }

            _page ??= ArrayPool<byte>.Shared.Rent(pageSize);
            if (!CompactedLog.TryReadPage(_compactedFile, page, _page.AsSpan(0, pageSize)))
            {
                _compactedDamage = true;
                _compactedOffset = page + pageSize;
                return Outcome.Again;
            }

            _compactedPage = page;
        }

        var offset = (int)(_compactedOffset - page);
        if (page == 0 && offset < CompactedLog.DataStart)
        {
            offset = CompactedLog.DataStart;
        }

        var entries = new PageEntries(_page.AsSpan(0, (int)Math.Min(pageSize, compacted.DataEnd - page)), page, offset);
        var step = entries.Next(out var entryAddress, out var entry);
        if (step != PageStep.Entry)
        {
            _compactedDamage |= step == PageStep.Damaged;
            _compactedOffset = page + pageSize;
            return Outcome.Again;
        }

        _compactedOffset = entries.NextAddress;
        return Accept(entry, entryAddress, entries.NextAddress, out message);
    }

    /// <summary>The compacted part is read: the reader goes on in the log at its cut, where the sequences it did not hold begin.</summary>
    private void LeaveCompacted(CompactedLog compacted)
    {
        if (_compactedDamage)
        {
            ReportCompactedDamage(compacted.LastSequence);
        }

        CloseCompacted(compacted);
        _fragments.Reset();
        _lastSequence = Math.Max(_lastSequence, compacted.NextSequence - 1);
        _damagedFrom = -1;
        _lastGoodEnd = compacted.CutAddress;
        Volatile.Write(ref _address, compacted.CutAddress);
    }

    private void CloseCompacted(CompactedLog compacted)
    {
        if (_compactedFile is { } file)
        {
            _compactedFile = null;
            _log.CloseCompactedFile(file);
        }

        _compactedPage = -1;
        Volatile.Write(ref _compacted, null);
        compacted.RemoveReader();
    }

    /// <summary>
    /// Damage in the compacted part between the last message read and <paramref name="upTo"/>: which of those sequences
    /// it held is unknown (compaction had removed others), so the whole range is reported, when the reader knows where it
    /// began (a reader that started inside the file and met damage before its first message leaves that to others).
    /// </summary>
    private void ReportCompactedDamage(long upTo)
    {
        _compactedDamage = false;
        var first = _lastSequence > 0 ? _lastSequence + 1 : _compactedOffsetAtStart == CompactedLog.DataStart ? _compacted!.FirstSequence : 0;
        if (first > 0 && upTo >= first)
        {
            _log.ReportHole(new LogHole(first, upTo), "were in a damaged part of the compacted log (some of them compaction had removed already)");
        }
    }

    /// <summary>Checks one entry and turns it into a message when it completes one.</summary>
    private Outcome Accept(ReadOnlySpan<byte> entry, long address, long end, out LogMessage message)
    {
        message = default;
        if (!LogRecord.TryRead(entry, out var record))
        {
            Damaged(address);
            return Outcome.Again;
        }

        if (record.Kind == LogRecordKind.Continuation)
        {
            if (!_fragments.InProgress || _fragments.Sequence != record.Sequence)
            {
                // A reader that started inside a split message skips its tail quietly; anywhere else it is damage.
                if (_lastSequence != 0 && record.Sequence > _lastSequence)
                {
                    Damaged(address);
                }

                return Outcome.Again;
            }

            if (!_fragments.Append(record.Part))
            {
                Damaged(address);
                return Outcome.Again;
            }

            if (!_fragments.Complete)
            {
                return Outcome.Again;
            }

            return Deliver(
                new LogMessage(_fragments.Sequence, _fragments.TimestampMs, _fragments.HasKey, _fragments.Key, _fragments.Payload, _fragments.Headers, _fragments.Producer),
                _fragments.Address, end, out message);
        }

        if (_fragments.InProgress)
        {
            // A new message began before the previous split one was complete: that one is lost.
            Damaged(_fragments.Address);
            _fragments.Reset();
        }

        if (record.Sequence <= _lastSequence)
        {
            // Stale or misplaced: a sequence never goes back along the log.
            Damaged(address);
            return Outcome.Again;
        }

        if (record.Kind == LogRecordKind.First)
        {
            _fragments.Begin(record.Sequence, address, record.TimestampMs, record.HasKey, record.Key, record.Producer, record.HeadersLength, record.PayloadLength, record.Part);
            return Outcome.Again;
        }

        return Deliver(new LogMessage(record.Sequence, record.TimestampMs, record.HasKey, record.Key, record.Payload, record.Headers, record.Producer), address, end, out message);
    }

    private Outcome Deliver(LogMessage found, long address, long end, out LogMessage message)
    {
        message = default;
        var (sequence, timestampMs) = (found.Sequence, found.TimestampMs);
        if (sequence <= _lastSequence)
        {
            Damaged(address);
            _fragments.Reset();
            return Outcome.Again;
        }

        if (_compacted is not null)
        {
            // Compaction leaves gaps between the sequences of its file: only damage met on the way is a hole.
            if (_compactedDamage)
            {
                ReportCompactedDamage(sequence - 1);
            }
        }
        else if (_lastSequence != 0 && sequence > _lastSequence + 1 && !_log.HoleList.Covers(_lastSequence + 1, sequence - 1))
        {
            var damaged = _damagedFrom >= 0;
            _log.ReportHole(
                new LogHole(_lastSequence + 1, sequence - 1, damaged ? _lastGoodEnd : -1, damaged ? address : -1),
                damaged ? "were lost: damaged records" : "were lost: records missing from the log");
        }

        _damagedFrom = -1;
        _lastSequence = sequence;
        _lastGoodEnd = end;
        if (sequence < _fromSequence || timestampMs < _skipBeforeTimestampMs || (!found.HasKey && sequence < _unkeyedFromSequence) || Filter?.Skips(found) == true)
        {
            _fragments.Reset();
            return Outcome.Again;
        }

        MessageAddress = address;
        message = found;
        return Outcome.Message;
    }

    private void Damaged(long address)
    {
        if (_compacted is not null)
        {
            _compactedDamage = true;
            return;
        }

        if (_damagedFrom < 0)
        {
            _damagedFrom = address;
        }
    }

    private void MoveTo(long address)
    {
        DisposeMemoryIterator();
        Volatile.Write(ref _address, address);
    }

    private void DisposeMemoryIterator()
    {
        if (_memory is not null)
        {
            Release();
            _memory.Dispose();
            _memory = null;
        }
    }

    private void ReleasePage()
    {
        if (_page is not null)
        {
            ArrayPool<byte>.Shared.Return(_page);
            _page = null;
            _pageAddress = -1;
        }
    }

    private enum Outcome
    {
        /// <summary>A message is returned.</summary>
        Message,

        /// <summary>Nothing more now.</summary>
        Wait,

        /// <summary>Keep reading.</summary>
        Again,
    }
}

/// <summary>One message as a reader returns it; its spans are valid until the reader's <see cref="LogReader.Release"/>.</summary>
internal readonly ref struct LogMessage(
    long sequence, long timestampMs, bool hasKey, ReadOnlySpan<byte> key, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> headers = default, ProducerStamp producer = default)
{
    public long Sequence { get; } = sequence;

    public long TimestampMs { get; } = timestampMs;

    public bool HasKey { get; } = hasKey;

    public ReadOnlySpan<byte> Key { get; } = key;

    public ReadOnlySpan<byte> Payload { get; } = payload;

    /// <summary>Its header block as published; empty for none (and for every message stored in format 2).</summary>
    public ReadOnlySpan<byte> Headers { get; } = headers;

    /// <summary>The idempotent producer that published it, or none.</summary>
    public ProducerStamp Producer { get; } = producer;
}
