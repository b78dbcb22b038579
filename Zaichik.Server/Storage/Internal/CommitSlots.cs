using FASTER.core;

namespace Zaichik.Server.Storage.Internal;

/// <summary>
/// FasterLog's commit records, kept in one <see cref="SlotFile"/> of two 4 KiB slots (<c>commit</c> beside the log)
/// instead of a file per commit: FasterLog's own manager creates and deletes a file per commit and waits on a pool
/// thread for its write, which stalled hundreds of committing topics for tens of seconds. Before a commit record is
/// written, <paramref name="beforeCommit"/> makes the pages it covers durable (the segment files are not written
/// through), so a record never points past what is on disk.
/// </summary>
/// <remarks>
/// The record is only a hint to recovery (<see cref="LogRecovery"/> checks the log against it and scans from it to the
/// end of the files, so records made durable after it are kept), which is also why recovery can hand FasterLog a record
/// of its own making: <see cref="OfferForRecovery"/>. So a record is flushed to disk only when recovery needs what it
/// says: the first commit after opening, a new bound of the sequences handed out (<see cref="CommitCookie.ReservedUntil"/>),
/// a new first sequence or begin address (retention), and the clean close. Every other commit writes its record without
/// flushing it, into the slot that does not hold the last flushed record: a commit then costs one flush (the pages) instead
/// of two, and a power cut that loses such a record leaves recovery the last flushed one, from which it checks a little more
/// of the log (at most about a block of the reservation, which is sized to about a second of publishes).
/// </remarks>
internal sealed class CommitSlots(SlotFile slots, Action beforeCommit) : ILogCommitManager
{
    public const string FileName = "commit";

    public const int SlotSize = 4096;

    private readonly Lock _lock = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, Exception> _failures = new();
    private (long CommitNum, byte[] Metadata)? _offered;
    private long _lastCommitNum;

    // What the last flushed record told recovery (FasterLog calls Commit one commit at a time).
    private bool _mustFlush = true;
    private long _flushedBegin;
    private CommitCookie _flushedCookie;
    private long _writtenReserved;

    /// <summary>The commit number <see cref="Commit"/> was last called with (FasterLog calls it one commit at a time).</summary>
    public long LastCommitNum => Volatile.Read(ref _lastCommitNum);

    /// <summary>
    /// Opens (or creates) the commit file. The folder is not flushed for a new file here: the log's first commit flushes
    /// it with its segments (<paramref name="beforeCommit"/>), before the first record is written.
    /// </summary>
    public static CommitSlots Open(string directory, FileBudget budget, Action beforeCommit) =>
        new(new SlotFile(Path.Combine(directory, FileName), SlotSize, budget, syncDirectory: false), beforeCommit);

    public SlotFileState State => slots.State;

    /// <summary>True when opening created the file.</summary>
    public bool Created => slots.Created;

    /// <summary>The newest commit record, or null when there is none.</summary>
    public (long CommitNum, FasterLogRecoveryInfo Info)? Latest
    {
        get
        {
            if (slots.ReadNewest(out var commitNum) is not { } metadata || Parse(metadata) is not { } info)
            {
                return null;
            }

            return (commitNum, info);
        }
    }

    /// <summary>Makes the next recovery start from <paramref name="info"/> instead of what the slots hold.</summary>
    public void OfferForRecovery(FasterLogRecoveryInfo info)
    {
        lock (_lock)
        {
            _offered = (info.CommitNum, info.ToByteArray());
        }
    }

    /// <summary>
    /// Makes the pages durable, then records the commit. FasterLog cannot take a failure here (an exception would leave
    /// the commit waiting forever), so a failure is kept for <see cref="TakeFailure"/> and the record is not written.
    /// </summary>
    public void Commit(long beginAddress, long untilAddress, byte[] commitMetadata, long commitNum, bool forceWriteMetadata)
    {
        Volatile.Write(ref _lastCommitNum, commitNum);
        try
        {
            beforeCommit();
            var cookie = Parse(commitMetadata) is { } info ? CommitCookie.TryRead(info.Cookie) : null;
            if (cookie is { Clean: false, ReservedUntil: var reserved } && reserved < _writtenReserved)
            {
                // A commit whose cookie was taken before a concurrent one raised the bound, and reached FasterLog after it:
                // as the newest record it would tell recovery to resume below sequences that may have been handed out.
                // Its pages are durable all the same; recovery finds them from the record before.
                return;
            }

            _writtenReserved = Math.Max(_writtenReserved, cookie?.ReservedUntil ?? 0);
            var flush = _mustFlush || beginAddress != _flushedBegin || cookie is not { Clean: false } open
                || open.FirstSequence != _flushedCookie.FirstSequence || open.ReservedUntil > _flushedCookie.ReservedUntil;
            slots.Write(commitNum, commitMetadata, flush);
            if (flush)
            {
                (_mustFlush, _flushedBegin, _flushedCookie) = (false, beginAddress, cookie ?? default);
            }
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            _mustFlush = true;
            _failures[commitNum] = exception;
        }
    }

    /// <summary>How many commit records were flushed to disk since the log opened.</summary>
    public long Flushes => slots.Flushes;

    private static FasterLogRecoveryInfo? Parse(byte[] metadata)
    {
        try
        {
            var info = new FasterLogRecoveryInfo();
            using var reader = new BinaryReader(new MemoryStream(metadata));
            info.Initialize(reader);
            return info;
        }
        catch (Exception exception) when (exception is FasterException or EndOfStreamException or IOException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>Why the commit <paramref name="commitNum"/> was not made durable, or null when it was.</summary>
    public Exception? TakeFailure(long commitNum) => _failures.TryRemove(commitNum, out var failure) ? failure : null;

    public byte[] GetCommitMetadata(long commitNum)
    {
        lock (_lock)
        {
            if (_offered is { } offered && offered.CommitNum == commitNum)
            {
                return offered.Metadata;
            }
        }

        return slots.Read(commitNum)!;
    }

    /// <summary>The commits held, newest first: the order FasterLog tries them in at recovery.</summary>
    public IEnumerable<long> ListCommits()
    {
        lock (_lock)
        {
            if (_offered is { } offered)
            {
                return [offered.CommitNum];
            }
        }

        return slots.Generations();
    }

    /// <summary>Nothing to do: a slot is reused by the commit after next.</summary>
    public void RemoveCommit(long commitNum)
    {
    }

    public void RemoveAllCommits()
    {
        slots.Clear();
        _mustFlush = true;
        _writtenReserved = 0;
    }

    public void OnRecovery(long commitNum)
    {
        lock (_lock)
        {
            _offered = null;
        }
    }

    public void Dispose() => slots.Dispose();
}
