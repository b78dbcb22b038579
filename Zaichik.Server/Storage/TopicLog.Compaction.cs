using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using Zaichik.Server.Storage.Internal;

namespace Zaichik.Server.Storage;

/// <summary>
/// Log compaction: a pass copies what the topic keeps from below a cut (the previous compacted file and the log from its
/// cut) into the next <see cref="CompactedLog"/>, after which the log can be truncated at the cut. FasterLog can only be
/// truncated at its head; this is how the disk a topic holds stays bounded by what it keeps.
/// </summary>
internal sealed partial class TopicLog
{
    private readonly Lock _compactedLock = new();
    private readonly SemaphoreSlim _compacting = new(1, 1);
    private CompactedLog? _compacted;
    private int _compactedFiles;

    /// <summary>The compacted part of the log, or null when it has none (never compacted).</summary>
    public CompactedLog? Compacted => Volatile.Read(ref _compacted);

    /// <summary>
    /// Where the log part begins for a new reader: the begin address, or the compacted part's cut while the truncation
    /// there waits for a reader still below it.
    /// </summary>
    public long LogStart => Math.Max(BeginAddress, Compacted?.CutAddress ?? 0);

    /// <summary>The first sequence of the log part (after the compacted part).</summary>
    public long LogFirstSequence => Compacted is { } compacted
        ? Math.Max(Volatile.Read(ref _firstSequence), Math.Min(compacted.NextSequence, NextSequence))
        : Volatile.Read(ref _firstSequence);

    /// <summary>What readers opened on this log step over (set by the topic when it opens the log); null for nothing.</summary>
    public IMessageFilter? ReadFilter { get; set; }

    /// <summary>
    /// Runs one compaction pass: reads the compacted part and then the log from its cut up to the last durable message,
    /// asks <paramref name="judge"/> about every message, writes those it keeps into the next compacted file, and puts that
    /// file in place (fsynced, renamed, folder fsynced). It never waits for the topic's appends, and nothing it reads is
    /// changed. Truncating the log at the pass's cut is the caller's (<see cref="TruncateUntil"/>), once no reader is below it.
    /// </summary>
    /// <param name="judge">Says what becomes of each message.</param>
    /// <param name="beforeInstall">Called once every message is judged, before the new file is put in place; what it throws ends the pass and the previous file stays.</param>
    /// <param name="cancellationToken">Ends the pass; the previous file stays.</param>
    /// <returns>What the pass did, or null when it did not run: the log is closing, a Memory log, no descriptor free, or nothing to change.</returns>
    /// <exception cref="IOException">The file could not be written; the previous one stays.</exception>
    public async ValueTask<CompactionPass?> CompactAsync(CompactionJudge judge, CancellationToken cancellationToken, Action? beforeInstall = null)
    {
        await _compacting.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (IsDisposed || InMemory || !_budget.TryAcquire())
            {
                return null;
            }

            try
            {
                return Compact(judge, beforeInstall, cancellationToken);
            }
            finally
            {
                _budget.Release();
            }
        }
        finally
        {
            _compacting.Release();
        }
    }

    private CompactionPass? Compact(CompactionJudge judge, Action? beforeInstall, CancellationToken cancellationToken)
    {
        var previous = Compacted;
        var durable = DurableSequence;
        var bytesBefore = (previous?.DataEnd ?? 0) + (TailAddress - LogStart);
        using var reader = OpenReaderAtBegin();
        reader.Filter = null;
        using var writer = new CompactedWriter(Directory, _pageSizeBits, MaxRecordSize);
        var cut = previous?.CutAddress ?? BeginAddress;
        var nextSequence = previous?.NextSequence ?? LogFirstSequence;
        var verdicts = new long[CompactionVerdicts.Count];
        var fromLog = 0L;
        while (reader.TryRead(out var message))
        {
            var fromCompacted = reader.LastFromCompacted;
            try
            {
                // Only what is durable is moved out of the log: a crash cannot then leave the compacted file ahead of it.
                if (!fromCompacted && message.Sequence > durable)
                {
                    break;
                }

                var verdict = judge(message);
                verdicts[(int)verdict]++;
                if (verdict == CompactionVerdict.Keep)
                {
                    writer.Add(message);
                }

                if (!fromCompacted)
                {
                    nextSequence = message.Sequence + 1;
                    fromLog++;
                }
            }
            finally
            {
                reader.Release();
            }

            if (!fromCompacted)
            {
                cut = reader.Position;
            }

            cancellationToken.ThrowIfCancellationRequested();
        }

        // A reader still in the old file stopped for want of a descriptor: what it did not read would be lost.
        var dropped = verdicts.Sum() - verdicts[(int)CompactionVerdict.Keep];
        if (IsDisposed || reader.InCompacted || (fromLog == 0 && dropped == 0))
        {
            return null;
        }

        beforeInstall?.Invoke();
        var created = writer.Complete((previous?.Generation ?? 0) + 1, cut, nextSequence);
        lock (_compactedLock)
        {
            Volatile.Write(ref _compacted, created);
        }

        previous?.Supersede();
        return new CompactionPass(created, cut, nextSequence, verdicts, bytesBefore, created.DataEnd + (TailAddress - cut));
    }

    /// <summary>The compacted part, counted as read by one more reader (which must call <see cref="CompactedLog.RemoveReader"/>), or null.</summary>
    internal CompactedLog? AcquireCompacted()
    {
        lock (_compactedLock)
        {
            return _compacted is { } compacted && compacted.TryAddReader() ? compacted : null;
        }
    }

    /// <summary>A reader of the compacted part from <paramref name="offset"/>, then of the log from its cut.</summary>
    private LogReader OpenReader(CompactedLog compacted, long offset, long fromSequence)
    {
        Interlocked.Increment(ref _readers);
        return new LogReader(this, compacted.CutAddress, fromSequence, compacted, offset);
    }

    /// <summary>Where in the compacted part to start reading for a target; its first entry when no descriptor is free.</summary>
    private long SeekCompacted(CompactedLog compacted, Func<long, long, bool> before)
    {
        try
        {
            if (OpenCompactedFile(compacted) is not { } file)
            {
                return CompactedLog.DataStart;
            }

            try
            {
                return compacted.Seek(file, before);
            }
            finally
            {
                CloseCompactedFile(file);
            }
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            // The reader meets the same failure and reports what it costs.
            return CompactedLog.DataStart;
        }
    }

    /// <summary>A descriptor on <paramref name="compacted"/>, counted in the storage budget; null when the budget is spent.</summary>
    /// <exception cref="IOException">The file cannot be opened.</exception>
    internal SafeFileHandle? OpenCompactedFile(CompactedLog compacted)
    {
        if (!_budget.TryAcquire())
        {
            return null;
        }

        try
        {
            var file = File.OpenHandle(compacted.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            Interlocked.Increment(ref _compactedFiles);
            return file;
        }
        catch
        {
            _budget.Release();
            throw;
        }
    }

    internal void CloseCompactedFile(SafeFileHandle file)
    {
        file.Dispose();
        Interlocked.Decrement(ref _compactedFiles);
        _budget.Release();
    }

    /// <summary>
    /// Takes up the compacted part found beside the segments, finishing what a pass left undone: the truncation at its
    /// cut, when the broker stopped between the two.
    /// </summary>
    private void LoadCompacted()
    {
        var compacted = CompactedLog.Load(Directory, _pageSizeBits, BeginAddress, Volatile.Read(ref _firstSequence));
        if (compacted is null)
        {
            return;
        }

        if (compacted.HeaderRebuilt)
        {
            LogCompactedHeaderRebuilt(_topic, compacted.Path, compacted.Count);
        }

        _compacted = compacted;
        if (compacted.CutAddress > BeginAddress && compacted.CutAddress <= TailAddress)
        {
            _log.TruncateUntil(compacted.CutAddress);
        }

        _firstSequence = Math.Max(_firstSequence, Math.Min(compacted.NextSequence, _nextSequence));

        // The newest message may be in the compacted part (a pass moved everything the log held there): recovery scanned
        // only the log. Without this a restart took the topic for older than it is, and rebuilt no key window from the
        // compacted part.
        _lastTimestampMs = Math.Max(_lastTimestampMs, compacted.LastTimestampMs);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic}: the header of {File} is damaged; its {Count} readable messages are kept, and it is rewritten at the next compaction")]
    private partial void LogCompactedHeaderRebuilt(string topic, string file, long count);
}

/// <summary>What a compaction pass does with one message.</summary>
internal enum CompactionVerdict
{
    /// <summary>Kept in the compacted part.</summary>
    Keep,

    /// <summary>Removed by compaction: a newer message has its key, its key was deleted, or it is a tombstone whose time is up.</summary>
    Compacted,

    /// <summary>Removed by retention (an unkeyed message past the TTL).</summary>
    Expired,

    /// <summary>Removed by a count or size limit.</summary>
    Trimmed,

    /// <summary>Removed as on any topic without retention: every reader and durable consumer has it.</summary>
    Consumed,
}

internal static class CompactionVerdicts
{
    public static int Count => Enum.GetValues<CompactionVerdict>().Length;
}

/// <summary>Decides what a compaction pass does with <paramref name="message"/>; called in sequence order, on one thread.</summary>
internal delegate CompactionVerdict CompactionJudge(LogMessage message);

/// <summary>What one compaction pass did.</summary>
/// <param name="Compacted">The new compacted part.</param>
/// <param name="CutAddress">Where the log can now be truncated.</param>
/// <param name="NextSequence">The first sequence at the cut.</param>
/// <param name="Verdicts">How many messages got each <see cref="CompactionVerdict"/>, by its value.</param>
/// <param name="BytesBefore">Bytes of compacted file and log before the pass.</param>
/// <param name="BytesAfter">Bytes of compacted file and log once the log is truncated at the cut.</param>
internal sealed record CompactionPass(CompactedLog Compacted, long CutAddress, long NextSequence, long[] Verdicts, long BytesBefore, long BytesAfter)
{
    public long Count(CompactionVerdict verdict) => Verdicts[(int)verdict];
}
