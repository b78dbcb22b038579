using System.Buffers.Binary;
using FASTER.core;
using Microsoft.Extensions.Logging;
using Zaichik.Server.Storage.Internal;

namespace Zaichik.Server.Storage;

/// <summary>
/// One topic's log: a FasterLog over the topic's segment files, seen from above as a sequence of messages numbered
/// 1, 2, 3... (<see cref="FirstSequence"/>..<see cref="LastSequence"/>), contiguous except where damaged storage
/// lost some (<see cref="Holes"/>), never reusing a number. Appends are visible to readers as soon as they are made;
/// <see cref="CommitAsync"/> makes them durable. This is the only type above the storage internals that knows FASTER.
/// </summary>
/// <remarks>
/// Appends must come from one caller at a time (the topic serialises them). Opening recovers the log from its files
/// (<see cref="LogRecovery"/>); closing commits it and marks it clean, so the next open checks only its last page.
/// </remarks>
internal sealed partial class TopicLog : IAsyncDisposable
{
    private const string MemorySequenceFile = "sequence";

    private readonly string _topic;
    private readonly ILogger _logger;
    private readonly IDevice _device;
    private readonly SegmentFiles? _files;
    private readonly ILogCommitManager _commits;
    private readonly SlotFile? _memorySequence;
    private readonly FasterLog _log;
    private readonly object _allocator;
    private readonly HoleList _holes;
    private readonly SequenceReservation _reservation;
    private readonly SemaphoreSlim _committing = new(1, 1);
    private readonly int _pageSizeBits;
    private readonly int _segmentSizeBits;
    private readonly Lock _commitLock = new();
    private long _nextSequence;
    private long _firstSequence;
    private long _durableSequence;
    private long _lastTimestampMs;
    private long _committedBegin;
    private long _committedReservation;
    private long _memorySequenceGeneration;

    // True while the newest commit record on disk says the log is closed and matches it: closing again need not commit.
    private bool _cleanOnDisk;
    // Completed without RunContinuationsAsynchronously: the Always commit path wakes its waiters on the committing thread;
    // every other path completes it from a pool work item.
    private TaskCompletionSource _durableAdvanced = new();

    // Set while FasterLog's commit worker runs the waiters of a commit (TryStartCommit): closing the log there would wait
    // for that worker to finish.
    [ThreadStatic]
    private static bool t_inCommitCallback;
    private int _disposed;
    private int _readers;
    private FileBudget _budget = FileBudget.Unlimited;

    private TopicLog(string topic, string directory, ILogger logger, StorageOptions options, IDevice device, SegmentFiles? files, ILogCommitManager commits,
        SlotFile? memorySequence, FasterLog log, HoleList holes, long firstSequence, long nextSequence, long lastTimestampMs, TimeProvider time, bool brandNew = false)
    {
        _topic = topic;
        Directory = directory;
        _logger = logger;
        _device = device;
        _files = files;
        _commits = commits;
        _memorySequence = memorySequence;
        _log = log;
        _allocator = FasterLogInternals.Allocator(log);
        _holes = holes;
        _pageSizeBits = options.PageSizeBits;
        _segmentSizeBits = options.SegmentSizeBits;
        MaxRecordSize = options.MaxRecordSize;
        _firstSequence = firstSequence;
        _nextSequence = nextSequence;
        _durableSequence = files is null ? 0 : nextSequence - 1;
        _lastTimestampMs = lastTimestampMs;
        _committedBegin = log.BeginAddress;

        // Nothing is reserved until the first append asks: that first reservation is also the commit that marks the log
        // as open, so that a crash from then on is recovered by checking the log rather than trusting its last commit.
        // A brand-new log needs no such commit (see SequenceReservation).
        _reservation = new SequenceReservation(nextSequence, PersistReservationAsync, time, brandNew);
        _committedReservation = nextSequence;
    }

    public string Directory { get; }

    /// <summary>True when nothing of this log is written to disk (a Memory topic).</summary>
    public bool InMemory => _files is null;

    /// <summary>Bytes of the largest entry a page takes; larger messages are split.</summary>
    public int MaxRecordSize { get; }

    /// <summary>
    /// The sequence of the oldest message still stored (the next one when there is none), in the compacted part when the
    /// log has one.
    /// </summary>
    public long FirstSequence => Volatile.Read(ref _compacted) is { } compacted
        ? compacted.Count > 0 ? compacted.FirstSequence : Math.Max(Volatile.Read(ref _firstSequence), Math.Min(compacted.NextSequence, NextSequence))
        : Volatile.Read(ref _firstSequence);

    /// <summary>The sequence the next appended message gets.</summary>
    public long NextSequence => Volatile.Read(ref _nextSequence);

    /// <summary>The sequence of the newest message, or <see cref="FirstSequence"/> - 1 when there is none.</summary>
    public long LastSequence => NextSequence - 1;

    /// <summary>Messages up to this sequence are on disk and survive a crash or a power cut.</summary>
    public long DurableSequence => Volatile.Read(ref _durableSequence);

    /// <summary>The newest message's timestamp (never decreasing along the log), or 0.</summary>
    public long LastTimestampMs => Volatile.Read(ref _lastTimestampMs);

    /// <summary>Sequences lost to damaged storage, reported once each.</summary>
    public IReadOnlyList<LogHole> Holes => _holes.Holes;

    internal HoleList HoleList => _holes;

    /// <summary>Address of the oldest record still in the log.</summary>
    public long BeginAddress => _log.BeginAddress;

    /// <summary>Address the next record will get.</summary>
    public long TailAddress => _log.TailAddress;

    /// <summary>Records below this address are no longer in memory and are read from the segment files.</summary>
    internal long HeadAddress => FasterLogInternals.HeadAddress(_allocator);

    internal int PageSizeBits => _pageSizeBits;

    internal bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>Descriptors this log holds now (tests count them).</summary>
    /// <summary>How many commit records were flushed to disk since the log opened (see <see cref="CommitSlots"/>).</summary>
    internal long CommitRecordFlushes => (_commits as CommitSlots)?.Flushes ?? 0;

    public int OpenFiles => (_files?.OpenHandles ?? 0) + (_commits is CommitSlots ? 1 : 0) + (_memorySequence is null ? 0 : 1) + Volatile.Read(ref _compactedFiles);

    /// <summary>What recovery found when this log was opened.</summary>
    public RecoveredLog? Recovery { get; private init; }

    /// <summary>
    /// Opens the log in <paramref name="directory"/>, recovering it from its files. An <paramref name="inMemory"/> log
    /// writes nothing to disk but its sequence bound: pages leaving memory are dropped, and readers that fall behind
    /// skip past them.
    /// </summary>
    /// <exception cref="WrongFileKindException">A file of the log is not a regular file: the topic cannot be served.</exception>
    /// <exception cref="StorageExhaustedException">No file descriptor is left: try again later.</exception>
    /// <exception cref="IOException">The log could not be read or recovered.</exception>
    /// <param name="newFolder">The topic's folder was just created: the folder holding it is flushed with the first commit.</param>
    public static TopicLog Open(string topic, string directory, StorageOptions options, FileBudget budget, TimeProvider time, ILogger logger, bool inMemory = false, bool newFolder = false)
    {
        System.IO.Directory.CreateDirectory(directory);
        try
        {
            if (inMemory)
            {
                if (newFolder && Path.GetDirectoryName(directory) is { } topics)
                {
                    Internal.DirectorySync.FlushShared(topics);
                }

                return OpenInMemory(topic, directory, options, budget, time, logger);
            }

            return OpenOnDisk(topic, directory, options, budget, time, logger, newFolder);
        }
        catch (FasterException exception)
        {
            // Nothing above the storage layer knows FASTER: its failures are I/O failures of the log.
            throw new IOException($"the log could not be recovered: {exception.Message}", exception);
        }
    }

    private static TopicLog OpenOnDisk(string topic, string directory, StorageOptions options, FileBudget budget, TimeProvider time, ILogger logger, bool newFolder)
    {
        FileKinds.RequireFileOrMissing(Path.Combine(directory, CommitSlots.FileName));
        FileKinds.RequireFileOrMissing(Path.Combine(directory, HoleList.FileName));
        var files = new SegmentFiles(directory, budget, newFolder);
        CommitSlots? commits = null;
        FasterLog? log = null;
        try
        {
            commits = CommitSlots.Open(directory, budget, files.Flush);
            if (commits.Created)
            {
                files.FolderChanged();
            }

            var latest = commits.Latest;
            var recovered = LogRecovery.Run(files, latest?.Info, options.PageSizeBits, options.SegmentSizeBits, commitFileExisted: !commits.Created);
            var commitLost = latest is null && SegmentFiles.List(directory).Count > 0 ? commits.State : (SlotFileState?)null;
            // A clean log ends where its commit says (whatever follows is sector padding); any other is cut at its last valid record.
            var cut = recovered.Clean ? 0 : Cut(files, recovered, options);
            if (!recovered.Clean)
            {
                // What recovery kept may sit only in the page cache (written after the last commit): make it durable.
                for (var segment = (int)(Math.Max(recovered.TailAddress - 1, 0) >> options.SegmentSizeBits); segment >= 0 && ((long)segment + 1) << options.SegmentSizeBits > recovered.BeginAddress; segment--)
                {
                    files.Sync(segment);
                    if (((long)segment << options.SegmentSizeBits) <= (latest?.Info.UntilAddress ?? 0))
                    {
                        break;
                    }
                }
            }

            var holes = new HoleList(directory);
            var device = new SegmentDevice(files);
            log = new FasterLog(Settings(device, commits, options));
            if (recovered.TailAddress > LogRecovery.FirstAddress || recovered.BeginAddress > LogRecovery.FirstAddress)
            {
                commits.OfferForRecovery(new FasterLogRecoveryInfo
                {
                    BeginAddress = recovered.BeginAddress,
                    UntilAddress = recovered.TailAddress,
                    CommitNum = recovered.CommitNum,
                    Cookie = new CommitCookie(false, recovered.FirstSequence, recovered.NextSequence - 1, recovered.NextSequence).ToBytes(),
                });
                log.Recover(recovered.CommitNum);
                commits.OnRecovery(recovered.CommitNum);
                if (log.TailAddress != recovered.TailAddress || log.BeginAddress != recovered.BeginAddress)
                {
                    throw new InvalidDataException(
                        $"the log recovered to {log.BeginAddress}..{log.TailAddress} instead of {recovered.BeginAddress}..{recovered.TailAddress}");
                }
            }

            // Recovery read what it needed; readers reopen what they need.
            files.ReleaseReadHandles();
            // Never committed and nothing on disk: the first publish needs no commit of its own (SequenceReservation).
            var brandNew = commits.Created && recovered.PhysicalEnd == 0 && recovered.NextSequence == 1;
            var opened = new TopicLog(topic, directory, logger, options, device, files, commits, null, log, holes,
                recovered.FirstSequence, recovered.NextSequence, recovered.LastTimestampMs, time, brandNew)
            {
                Recovery = recovered,
                _budget = budget,

                // A log with no commit record yet gets one when it closes, so that its next open has one to trust.
                _cleanOnDisk = recovered.Clean && cut == 0 && latest is not null,
            };
            opened.ReportRecovery(recovered, commitLost, cut);
            opened.LoadCompacted();
            return opened;
        }
        catch
        {
            log?.Dispose();
            commits?.Dispose();
            files.Dispose();
            throw;
        }
    }

    private static TopicLog OpenInMemory(string topic, string directory, StorageOptions options, FileBudget budget, TimeProvider time, ILogger logger)
    {
        FileKinds.RequireFileOrMissing(Path.Combine(directory, MemorySequenceFile));
        var sequence = new SlotFile(Path.Combine(directory, MemorySequenceFile), 64, budget);
        try
        {
            // Every message of a Memory topic is gone after a restart; their sequences are not given again.
            var next = sequence.ReadNewest(out var generation) is { Length: sizeof(long) } bound ? Math.Max(1, BinaryPrimitives.ReadInt64LittleEndian(bound)) : 1;
            var device = new NullDevice();
            var commits = new MemoryCommits();
            var log = new FasterLog(Settings(device, commits, options));
            return new TopicLog(topic, directory, logger, options, device, null, commits, sequence, log, new HoleList(null), next, next, 0, time)
            {
                _budget = budget,
                _memorySequenceGeneration = Math.Max(generation, 0),
            };
        }
        catch
        {
            sequence.Dispose();
            throw;
        }
    }

    private static FasterLogSettings Settings(IDevice device, ILogCommitManager commits, StorageOptions options) => new()
    {
        LogDevice = device,
        LogCommitManager = commits,
        PageSizeBits = options.PageSizeBits,
        MemorySizeBits = options.MemorySizeBits,
        SegmentSizeBits = options.SegmentSizeBits,
        AutoRefreshSafeTailAddress = true,
        TryRecoverLatest = false,
        RemoveOutdatedCommits = false,

        // Records carry their own CRC (LogRecord), checked on every read; FasterLog's checksums are checked only on
        // pages read back from disk, and a mismatch there throws out of the iterator mid-delivery.
        LogChecksum = LogChecksumType.None,
    };

    /// <summary>
    /// Removes what lies beyond the recovered tail, as Kafka truncates a log at its last valid record: zeros in the
    /// rest of the tail page (FasterLog reloads that page and appends after the tail), the rest of the tail segment,
    /// and later segments. None of it holds a valid message: recovery read all of it. Returns the bytes removed.
    /// </summary>
    private static long Cut(SegmentFiles files, RecoveredLog recovered, StorageOptions options)
    {
        if (recovered.PhysicalEnd <= recovered.TailAddress)
        {
            return 0;
        }

        var pageSize = 1 << options.PageSizeBits;
        var tail = recovered.TailAddress;
        var segment = (int)(tail >> options.SegmentSizeBits);
        var segmentStart = (long)segment << options.SegmentSizeBits;
        var pageEnd = ((tail >> options.PageSizeBits) + 1) << options.PageSizeBits;
        var removed = recovered.PhysicalEnd - tail;
        if (tail % pageSize != 0)
        {
            var rest = new byte[(int)(pageEnd - tail)];
            var read = files.Read(segment, tail - segmentStart, rest);
            if (read > 0 && rest.AsSpan(0, read).ContainsAnyExcept((byte)0))
            {
                files.Write(segment, tail - segmentStart, new byte[read]);
            }
        }

        var keep = tail % pageSize == 0 ? tail - segmentStart : pageEnd - segmentStart;
        files.Truncate(segment, keep);
        foreach (var later in SegmentFiles.List(files.Directory).Where(later => later > segment))
        {
            files.Delete(later);
        }

        files.Flush();
        return removed;
    }

    private void ReportRecovery(RecoveredLog recovered, SlotFileState? commitLost, long cut)
    {
        if (commitLost is { } state)
        {
            LogCommitLost(_topic, state == SlotFileState.Damaged ? "damaged" : "missing or zeroed", recovered.ScannedBytes);
        }

        if (_holes.WasDamaged)
        {
            LogHolesFileDamaged(_topic);
        }

        foreach (var (hole, reason) in recovered.Holes)
        {
            ReportHole(hole, reason);
        }

        if (cut > 0)
        {
            LogCut(_topic, cut, recovered.TailAddress);
        }

        if (!recovered.Clean || recovered.Holes.Count > 0)
        {
            LogRecovered(_topic, recovered.Mode, recovered.FirstSequence, recovered.NextSequence - 1, recovered.ScannedBytes);
        }
    }

    /// <summary>
    /// Appends one message without waiting and gives its sequence; false when it must take the slow path
    /// (<see cref="AppendAsync"/>): the in-memory tail is full, the sequence bound must be raised first, or the message
    /// is larger than a page.
    /// </summary>
    public bool TryAppend(long timestampMs, ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte> payload, ReadOnlyMemory<byte> headers, ProducerStamp producer, out long sequence)
    {
        sequence = _nextSequence;
        try
        {
            if (LogRecord.SizeOf(key?.Length ?? 0, headers.Length, payload.Length, producer) > MaxRecordSize || !_reservation.Covers(sequence)
                || !_log.TryEnqueue(new WholeEntry(sequence, timestampMs, key, payload, headers, producer), out _))
            {
                return false;
            }
        }
        catch (FasterException exception)
        {
            throw new IOException($"the log refused the message: {exception.Message}", exception);
        }

        Appended(sequence, timestampMs);
        return true;
    }

    /// <summary>Appends one message, waiting for room or for the sequence bound, splitting it if it is larger than a page.</summary>
    /// <exception cref="IOException">The sequence bound could not be made durable, or the log failed.</exception>
    public async ValueTask<long> AppendAsync(
        long timestampMs, ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte> payload, ReadOnlyMemory<byte> headers, ProducerStamp producer, CancellationToken cancellationToken)
    {
        try
        {
            return await AppendOrThrowAsync(timestampMs, key, payload, headers, producer, cancellationToken).ConfigureAwait(false);
        }
        catch (FasterException exception)
        {
            throw new IOException($"the log refused the message: {exception.Message}", exception);
        }
    }

    private async ValueTask<long> AppendOrThrowAsync(
        long timestampMs, ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte> payload, ReadOnlyMemory<byte> headers, ProducerStamp producer, CancellationToken cancellationToken)
    {
        var sequence = _nextSequence;
        await _reservation.WaitAsync(sequence).ConfigureAwait(false);
        var keyLength = key?.Length ?? 0;
        if (LogRecord.SizeOf(keyLength, headers.Length, payload.Length, producer) <= MaxRecordSize)
        {
            await _log.EnqueueAsync(new WholeEntry(sequence, timestampMs, key, payload, headers, producer), cancellationToken).ConfigureAwait(false);
        }
        else
        {
            // Fragments go back to back; the caller holds off other appends, so nothing falls between them. They carry
            // the headers then the payload, split wherever a page ends.
            var content = headers.Length + payload.Length;
            var firstPart = MaxRecordSize - LogRecord.HeaderSizeOf(headers.Length, producer) - keyLength - LogRecord.FirstFragmentExtra;
            var (headersPart, payloadPart) = ContentSlice(headers, payload, 0, firstPart);
            await _log.EnqueueAsync(
                new FragmentEntry(sequence, timestampMs, key, headers.Length, producer, payload.Length, headersPart, payloadPart, first: true), cancellationToken).ConfigureAwait(false);
            var continuationPart = MaxRecordSize - LogRecord.HeaderSize;
            for (var position = firstPart; position < content; position += continuationPart)
            {
                (headersPart, payloadPart) = ContentSlice(headers, payload, position, Math.Min(continuationPart, content - position));
                await _log.EnqueueAsync(
                    new FragmentEntry(sequence, timestampMs, null, 0, ProducerStamp.None, payload.Length, headersPart, payloadPart, first: false), cancellationToken).ConfigureAwait(false);
            }
        }

        Appended(sequence, timestampMs);
        return sequence;
    }

    /// <summary>The bytes <paramref name="start"/>..+<paramref name="length"/> of the headers followed by the payload, as a part of each.</summary>
    private static (ReadOnlyMemory<byte> Headers, ReadOnlyMemory<byte> Payload) ContentSlice(ReadOnlyMemory<byte> headers, ReadOnlyMemory<byte> payload, int start, int length)
    {
        var end = start + length;
        var headersPart = start < headers.Length ? headers[start..Math.Min(end, headers.Length)] : ReadOnlyMemory<byte>.Empty;
        var payloadPart = end > headers.Length ? payload[Math.Max(start - headers.Length, 0)..(end - headers.Length)] : ReadOnlyMemory<byte>.Empty;
        return (headersPart, payloadPart);
    }

    private void Appended(long sequence, long timestampMs)
    {
        _lastTimestampMs = timestampMs;
        Volatile.Write(ref _nextSequence, sequence + 1);
    }

    /// <summary>A FasterLog iterator over memory from <paramref name="address"/>, following the tail.</summary>
    internal FasterLogScanIterator Scan(long address) =>
        _log.Scan(address, long.MaxValue, scanBufferingMode: ScanBufferingMode.SinglePageBuffering, scanUncommitted: true);

    /// <summary>A reader from <paramref name="address"/> that delivers messages from sequence <paramref name="fromSequence"/> on and follows the tail.</summary>
    public LogReader OpenReader(long address, long fromSequence)
    {
        Interlocked.Increment(ref _readers);
        return new LogReader(this, Math.Max(address, BeginAddress), fromSequence);
    }

    /// <summary>Readers open now.</summary>
    public int Readers => Volatile.Read(ref _readers);

    /// <summary>A reader left: when it was the last, the descriptors kept for reading old segments are closed.</summary>
    internal void ReaderClosed()
    {
        if (Interlocked.Decrement(ref _readers) == 0 && !IsDisposed)
        {
            _files?.ReleaseReadHandles();
        }
    }

    /// <summary>A reader from the oldest message.</summary>
    /// <remarks>
    /// Truncation frees whole pages, so the first page may still hold messages below <see cref="FirstSequence"/>: they are
    /// gone all the same, and no reader opened here or by sequence or time returns them.
    /// </remarks>
    public LogReader OpenReaderAtBegin() =>
        AcquireCompacted() is { } compacted
            ? OpenReader(compacted, CompactedLog.DataStart, FirstSequence)
            : OpenReader(BeginAddress, FirstSequence);

    /// <summary>A reader of messages appended from now on.</summary>
    public LogReader OpenReaderAtTail() => OpenReader(TailAddress, NextSequence);

    /// <summary>
    /// A reader whose first message is the first stored one with a sequence at or after <paramref name="sequence"/>
    /// (a sequence past the last waits for it). Found by a binary search over pages: a few pages are read however
    /// long the log is.
    /// </summary>
    public async ValueTask<LogReader> OpenReaderAtSequenceAsync(long sequence, CancellationToken cancellationToken)
    {
        if (sequence <= FirstSequence)
        {
            return OpenReaderAtBegin();
        }

        if (Compacted is { } held && sequence < held.NextSequence && AcquireCompacted() is { } compacted)
        {
            if (sequence < compacted.NextSequence)
            {
                return OpenReader(compacted, SeekCompacted(compacted, (probeSequence, _) => probeSequence < sequence), sequence);
            }

            compacted.RemoveReader();
        }

        if (sequence <= LogFirstSequence)
        {
            return OpenReader(LogStart, LogFirstSequence);
        }

        if (sequence >= NextSequence)
        {
            return OpenReader(TailAddress, sequence);
        }

        var address = await SeekAsync(probe => probe.Sequence < sequence, cancellationToken).ConfigureAwait(false);
        return OpenReader(address, sequence);
    }

    /// <summary>A reader whose first message is the first stored one stamped at or after <paramref name="timestampMs"/>.</summary>
    public async ValueTask<LogReader> OpenReaderAtTimeAsync(long timestampMs, CancellationToken cancellationToken)
    {
        if (Compacted is { Count: > 0 } held && timestampMs <= held.LastTimestampMs && AcquireCompacted() is { } compacted)
        {
            var fromCompacted = OpenReader(compacted, SeekCompacted(compacted, (_, probeTimestampMs) => probeTimestampMs < timestampMs), FirstSequence);
            fromCompacted.SkipBefore(timestampMs);
            return fromCompacted;
        }

        var address = await SeekAsync(probe => probe.TimestampMs < timestampMs, cancellationToken).ConfigureAwait(false);
        var reader = OpenReader(address, LogFirstSequence);
        reader.SkipBefore(timestampMs);
        return reader;
    }

    /// <summary>
    /// The start of the last page whose first message is still before the target (<paramref name="before"/> holds for
    /// it), found by a binary search over pages: sequences and timestamps only grow along the log, and records never
    /// span pages. A page with no readable message counts as after the target, so damage can only make the search
    /// start earlier, never skip a message.
    /// </summary>
    private async ValueTask<long> SeekAsync(Func<PageProbe, bool> before, CancellationToken cancellationToken)
    {
        var begin = LogStart;
        var tail = TailAddress;
        var low = begin >> _pageSizeBits;
        var high = (tail - 1) >> _pageSizeBits;
        var found = begin;
        while (low <= high && tail > begin)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var page = low + ((high - low) / 2);
            var pageStart = Math.Max(page << _pageSizeBits, begin);
            var probe = await ProbeAsync(pageStart, Math.Min((page + 1) << _pageSizeBits, tail)).ConfigureAwait(false);
            if (probe is { } first && before(first))
            {
                found = pageStart;
                low = page + 1;
            }
            else
            {
                high = page - 1;
            }
        }

        return found;
    }

    /// <summary>The first message of the page range, read from the files below the head address and from memory above it.</summary>
    private ValueTask<PageProbe?> ProbeAsync(long from, long until)
    {
        if (from < HeadAddress && _files is not null)
        {
            var pageSize = 1 << _pageSizeBits;
            var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(pageSize);
            try
            {
                var page = from >> _pageSizeBits << _pageSizeBits;
                var span = buffer.AsSpan(0, pageSize);
                if (ReadPage(page, span) is PageRead.Failed)
                {
                    return ValueTask.FromResult<PageProbe?>(null);
                }

                var entries = new PageEntries(span, page, (int)(from - page));
                while (entries.Next(out var address, out var entry) == PageStep.Entry && address < until)
                {
                    if (LogRecord.TryRead(entry, out var record))
                    {
                        return ValueTask.FromResult<PageProbe?>(new PageProbe(record.Sequence, record.TimestampMs));
                    }
                }

                return ValueTask.FromResult<PageProbe?>(null);
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        return ProbeMemoryAsync(from, until);
    }

    /// <summary>The first message of an in-memory page range, among those readable now (it never waits for more).</summary>
    private ValueTask<PageProbe?> ProbeMemoryAsync(long from, long until)
    {
        using var iterator = _log.Scan(from, until, scanBufferingMode: ScanBufferingMode.SinglePageBuffering, scanUncommitted: true);
        try
        {
            while (iterator.GetNext(out var entry, out var length, out _))
            {
                if (LogRecord.TryRead(entry.AsSpan(0, length), out var record))
                {
                    return ValueTask.FromResult<PageProbe?>(new PageProbe(record.Sequence, record.TimestampMs));
                }
            }
        }
        catch (FasterException)
        {
        }

        return ValueTask.FromResult<PageProbe?>(null);
    }

    private readonly record struct PageProbe(long Sequence, long TimestampMs);

    /// <summary>Reads the page at <paramref name="page"/> from the segment files into <paramref name="buffer"/>, zero past what they hold.</summary>
    internal PageRead ReadPage(long page, Span<byte> buffer)
    {
        buffer.Clear();
        if (_files is null)
        {
            return PageRead.Missing;
        }

        var segment = (int)(page >> _segmentSizeBits);
        try
        {
            return _files.Read(segment, page & ((1L << _segmentSizeBits) - 1), buffer) < 0 ? PageRead.Missing : PageRead.Read;
        }
        catch (StorageExhaustedException)
        {
            return PageRead.Exhausted;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            return PageRead.Failed;
        }
    }

    /// <summary>
    /// Records a hole a reader found (a gap in sequences, with the byte range of the damage when it saw one) and warns
    /// about it once; readers after it step over the range and say nothing.
    /// </summary>
    internal void ReportHole(LogHole hole, string reason)
    {
        if (IsDisposed)
        {
            // What a reader saw while the log was closing under it is not damage.
            return;
        }

        var known = _holes.Holes.Count;
        try
        {
            if (_holes.Add(hole))
            {
                LogHole(_topic, hole.FirstSequence, hole.LastSequence, hole.Count, reason);
            }
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            if (_holes.Holes.Count > known)
            {
                LogHole(_topic, hole.FirstSequence, hole.LastSequence, hole.Count, reason);
            }

            LogHoleNotRecorded(exception, _topic, hole.FirstSequence, hole.LastSequence);
        }
    }

    /// <summary>Messages stored after <paramref name="sequence"/>, holes not counted: a consumer's lag, exact.</summary>
    /// <remarks>
    /// In the compacted part, which holds only some of its sequences, the count is estimated as if what it kept were spread
    /// evenly over them.
    /// </remarks>
    public long CountAfter(long sequence)
    {
        var inCompacted = Compacted is { Count: > 0 } compacted && sequence < compacted.LastSequence
            ? sequence < compacted.FirstSequence ? compacted.Count : compacted.Count * (compacted.LastSequence - sequence) / (compacted.LastSequence - compacted.FirstSequence + 1)
            : 0;
        var from = Math.Max(sequence, LogFirstSequence - 1);
        var last = LastSequence;
        return inCompacted + (last <= from ? 0 : last - from - _holes.CountWithin(from, last));
    }

    /// <summary>
    /// Drops every record below <paramref name="address"/>, whose first message has <paramref name="firstSequence"/>;
    /// disk is freed a segment at a time, at the next commit.
    /// </summary>
    /// <remarks>
    /// Pages are freed whole, so <paramref name="address"/> may stay at the begin address (the first message kept is on the
    /// first page): the first sequence moves all the same, and no reader returns the messages before it.
    /// </remarks>
    public void TruncateUntil(long address, long firstSequence)
    {
        if (address < _log.BeginAddress || address > _log.TailAddress)
        {
            return;
        }

        if (address > _log.BeginAddress)
        {
            _log.TruncateUntil(address);
        }

        Volatile.Write(ref _firstSequence, Math.Max(_firstSequence, Math.Min(firstSequence, NextSequence)));
    }

    /// <summary>True when there is something for <see cref="CommitAsync"/> to do.</summary>
    public bool NeedsCommit =>
        !InMemory && (DurableSequence < LastSequence || _committedBegin < _log.BeginAddress || _committedReservation < _reservation.Requested);

    /// <summary>Makes everything appended so far durable (and any truncation): the pages, then the commit record.</summary>
    public async ValueTask CommitAsync(CancellationToken cancellationToken)
    {
        if (InMemory || !NeedsCommit)
        {
            return;
        }

        await CommitAsync(clean: false, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask CommitAsync(bool clean, CancellationToken cancellationToken)
    {
        // One commit at a time: a copy taken after a clean commit (CopyCommittedAsync) must not see a later one overtake it.
        await _committing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await CommitLockedAsync(clean, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _committing.Release();
        }
    }

    /// <summary>
    /// For a cluster snapshot: waits out a compaction pass, commits everything and marks the commit clean (a copy of
    /// the files recovers to exactly these sequences, without skipping a reservation as after a crash), then runs
    /// <paramref name="copy"/> before any other commit or compaction pass may change the files. The caller makes sure
    /// nothing appends or truncates meanwhile. A later commit marks the log open again.
    /// </summary>
    public async ValueTask CopyCommittedAsync(Func<ValueTask> copy, CancellationToken cancellationToken)
    {
        await _compacting.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _committing.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (!InMemory && !IsDisposed)
                {
                    await CommitLockedAsync(clean: true, cancellationToken).ConfigureAwait(false);
                }

                await copy().ConfigureAwait(false);
            }
            finally
            {
                _committing.Release();
            }
        }
        finally
        {
            _compacting.Release();
        }
    }

    private async ValueTask CommitLockedAsync(bool clean, CancellationToken cancellationToken)
    {
        var last = LastSequence;
        var begin = _log.BeginAddress;
        var reserved = _reservation.ForCommit(NextSequence);
        // The log's own first sequence: recovery reads it as where the segments begin, the compacted part aside.
        var cookie = new CommitCookie(clean, Volatile.Read(ref _firstSequence), last, reserved).ToBytes();
        _cleanOnDisk = false;
        long commitNum;
        try
        {
            (_, _, commitNum) = await _log.CommitStronglyAsync(cookie, -1, cancellationToken).ConfigureAwait(false);
        }
        catch (FasterException exception)
        {
            throw new IOException($"the commit failed: {exception.Message}", exception);
        }

        if ((_commits as CommitSlots)?.TakeFailure(commitNum) is { } failure)
        {
            throw new IOException($"the commit could not be made durable: {failure.Message}", failure);
        }

        if (Committed(begin, reserved, last) is { } advanced)
        {
            // Off this thread, as before: the waiters may do anything, and this caller may hold the topic's gate.
            ThreadPool.UnsafeQueueUserWorkItem(static advanced => advanced.TrySetResult(), advanced, preferLocal: true);
        }
    }

    /// <summary>
    /// Starts a commit of everything appended so far (and any truncation) and returns without waiting for it: the pages
    /// are written on this thread, and <paramref name="completed"/> is called on the thread that makes them and the commit
    /// record durable (FasterLog's commit worker), with null or the failure, after <see cref="DurableSequence"/> has moved;
    /// the waiters to wake are passed along (null when none), for the caller to complete with <see cref="WakeInline"/> or
    /// from the pool. Returns false, and never calls <paramref name="completed"/>, when there is nothing to commit. A failed
    /// write of the pages is reported through <see cref="WriteFailed"/> instead: FasterLog then never completes the commit.
    /// </summary>
    /// <remarks>
    /// This is the <c>Always</c> path: no task, no thread-pool hop between the commit and the Acks waiting for it. Only one
    /// such commit is started at a time (<c>TopicCommitter</c>); <see cref="CommitAsync(CancellationToken)"/> may run beside it.
    /// </remarks>
    /// <exception cref="IOException">FasterLog refused the commit (it failed earlier).</exception>
    internal bool TryStartCommit(Action<Exception?, TaskCompletionSource?> completed)
    {
        if (InMemory || !NeedsCommit)
        {
            return false;
        }

        var last = LastSequence;
        var begin = _log.BeginAddress;
        var reserved = _reservation.ForCommit(NextSequence);
        var cookie = new CommitCookie(false, Volatile.Read(ref _firstSequence), last, reserved).ToBytes();
        var slots = _commits as CommitSlots;
        _cleanOnDisk = false;

        // Called by FasterLog right after it had the commit manager write this commit's record (CommitSlots.Commit, on the
        // same thread, one commit at a time): the slots' last commit is this one.
        void Durable()
        {
            if (slots?.TakeFailure(slots.LastCommitNum) is { } failure)
            {
                completed(new IOException($"the commit could not be made durable: {failure.Message}", failure), null);
                return;
            }

            completed(null, Committed(begin, reserved, last));
        }

        try
        {
            if (!_log.CommitStrongly(out _, out _, spinWait: false, cookie, -1, Durable))
            {
                throw new IOException("the log refused the commit");
            }
        }
        catch (FasterException exception)
        {
            throw new IOException($"the commit failed: {exception.Message}", exception);
        }

        return true;
    }

    /// <summary>
    /// Completes the waiters of a commit started by <see cref="TryStartCommit"/> on this thread (synchronous
    /// continuations: the Acks waiting for the commit are sent from here).
    /// </summary>
    internal static void WakeInline(TaskCompletionSource advanced)
    {
        var wasInCallback = t_inCommitCallback;
        t_inCommitCallback = true;
        try
        {
            advanced.TrySetResult();
        }
        finally
        {
            t_inCommitCallback = wasInCallback;
        }
    }

    /// <summary>Called when writing the log's pages failed: FasterLog stays failed, and completes no commit after it.</summary>
    internal event Action<Exception>? WriteFailed
    {
        add
        {
            if (_device is SegmentDevice device)
            {
                device.WriteFailed += value;
            }
        }

        remove
        {
            if (_device is SegmentDevice device)
            {
                device.WriteFailed -= value;
            }
        }
    }

    /// <summary>Records a durable commit; returns the waiters to wake when <see cref="DurableSequence"/> moved.</summary>
    private TaskCompletionSource? Committed(long begin, long reserved, long last)
    {
        TaskCompletionSource? advanced = null;
        lock (_commitLock)
        {
            _committedBegin = Math.Max(_committedBegin, begin);
            _committedReservation = Math.Max(_committedReservation, reserved);
            if (last > _durableSequence)
            {
                Volatile.Write(ref _durableSequence, last);
                advanced = Interlocked.Exchange(ref _durableAdvanced, new TaskCompletionSource());
            }
        }

        try
        {
            _holes.ForgetBefore(FirstSequence);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            // The holes file keeps holes the log no longer reaches: harmless, and rewritten at the next change.
        }

        return advanced;
    }

    /// <summary>Wakes <see cref="WaitForDurableAsync"/> callers (on the thread pool) so they look at a commit failure at once.</summary>
    public void WakeDurableWaiters() =>
        ThreadPool.UnsafeQueueUserWorkItem(static advanced => advanced.TrySetResult(), Interlocked.Exchange(ref _durableAdvanced, new TaskCompletionSource()), preferLocal: false);

    /// <summary>Completes when <see cref="DurableSequence"/> reaches <paramref name="sequence"/>, or on <see cref="WakeDurableWaiters"/>; starts no commit itself.</summary>
    public async ValueTask WaitForDurableAsync(long sequence, CancellationToken cancellationToken)
    {
        var advanced = Volatile.Read(ref _durableAdvanced);
        if (DurableSequence >= sequence)
        {
            return;
        }

        await advanced.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private Task PersistReservationAsync(long until)
    {
        if (_memorySequence is { } file)
        {
            return Task.Run(() =>
            {
                Span<byte> bound = stackalloc byte[sizeof(long)];
                BinaryPrimitives.WriteInt64LittleEndian(bound, until);
                file.Write(Interlocked.Increment(ref _memorySequenceGeneration), bound, flush: true);
            });
        }

        // The bound travels in the commit record; this commit also marks the log as open (not clean).
        return CommitAsync(clean: false, CancellationToken.None).AsTask();
    }

    /// <summary>Commits everything and marks the log clean, then closes it. The caller makes sure nothing appends meanwhile.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (t_inCommitCallback)
        {
            // FasterLog's Dispose waits for its commit worker, which is this thread.
            await Task.Yield();
        }

        // A compaction pass in progress sees the log closed and gives up; its files must be left before they close.
        await _compacting.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!InMemory && !(_cleanOnDisk && !NeedsCommit))
            {
                await CommitAsync(clean: true, CancellationToken.None).ConfigureAwait(false);
            }
        }
        finally
        {
            var device = _device as SegmentDevice;
            if (device is not null && !await device.CloseAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false))
            {
                LogTruncationStuck(_topic);
            }

            _log.Dispose();
            if (device is not null && _files is not null)
            {
                try
                {
                    // What FasterLog would have removed after the last commit: below the begin that commit recorded.
                    _files.DeleteBelow(_committedBegin, _segmentSizeBits);
                }
                catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
                {
                    // Only space is lost; the next truncation or open tries again.
                }
            }

            _commits.Dispose();
            _memorySequence?.Dispose();
            _files?.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic}: a removal of old segments was still running after 10 s when the log closed")]
    private partial void LogTruncationStuck(string topic);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic}: sequences {First}..{Last} ({Count}) {Reason}; readers skip them")]
    private partial void LogHole(string topic, long first, long last, long count, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Topic {Topic}: could not write the hole {First}..{Last} to its holes file; it is known until the topic closes and will be reported again after")]
    private partial void LogHoleNotRecorded(Exception exception, string topic, long first, long last);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic}: its commit record is {State}; recovered the log by checking every record of its segments ({Bytes} bytes read)")]
    private partial void LogCommitLost(string topic, string state, long bytes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic}: its holes file was unreadable; holes are found again as readers meet them")]
    private partial void LogHolesFileDamaged(string topic);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic}: removed {Bytes} bytes after its last valid record (address {Tail}): torn or unwritten data from an unclean stop")]
    private partial void LogCut(string topic, long bytes, long tail);

    [LoggerMessage(Level = LogLevel.Information, Message = "Topic {Topic} recovered ({Mode}): messages {First}..{Last}, {Bytes} bytes checked")]
    private partial void LogRecovered(string topic, string mode, long first, long last, long bytes);

    /// <summary>One message written as one entry, straight into the log's memory.</summary>
    private readonly struct WholeEntry(long sequence, long timestampMs, ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte> payload, ReadOnlyMemory<byte> headers, ProducerStamp producer)
        : ILogEnqueueEntry
    {
        public int SerializedLength => LogRecord.SizeOf(key?.Length ?? 0, headers.Length, payload.Length, producer);

        public void SerializeTo(Span<byte> destination) =>
            LogRecord.WriteWhole(destination, sequence, timestampMs, key.HasValue, key.HasValue ? key.Value.Span : default, headers.Span, producer, payload.Span);
    }

    /// <summary>One fragment of a message larger than a page: a part of its headers followed by a part of its payload.</summary>
    private readonly struct FragmentEntry(
        long sequence, long timestampMs, ReadOnlyMemory<byte>? key, int headersLength, ProducerStamp producer, int payloadLength,
        ReadOnlyMemory<byte> headersPart, ReadOnlyMemory<byte> payloadPart, bool first) : ILogEnqueueEntry
    {
        public int SerializedLength => first
            ? LogRecord.HeaderSizeOf(headersLength, producer) + (key?.Length ?? 0) + LogRecord.FirstFragmentExtra + headersPart.Length + payloadPart.Length
            : LogRecord.HeaderSize + headersPart.Length + payloadPart.Length;

        public void SerializeTo(Span<byte> destination)
        {
            if (first)
            {
                LogRecord.WriteFirst(
                    destination, sequence, timestampMs, key.HasValue, key.HasValue ? key.Value.Span : default, headersLength, producer, payloadLength, headersPart.Span, payloadPart.Span);
            }
            else
            {
                LogRecord.WriteContinuation(destination, sequence, timestampMs, headersPart.Span, payloadPart.Span);
            }
        }
    }
}

/// <summary>What <see cref="TopicLog.ReadPage"/> found.</summary>
internal enum PageRead
{
    /// <summary>The page was read (zero past the end of its file).</summary>
    Read,

    /// <summary>Its segment file does not exist; the buffer is zeros.</summary>
    Missing,

    /// <summary>The read failed: the page counts as damaged.</summary>
    Failed,

    /// <summary>No file descriptor was available: try again later; nothing is damaged.</summary>
    Exhausted,
}
