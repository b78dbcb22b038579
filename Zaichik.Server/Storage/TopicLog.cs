using FASTER.core;

namespace Zaichik.Server.Storage;

/// <summary>
/// One topic's FasterLog and its device. Appends are visible to tailing iterators as soon as they are
/// enqueued (uncommitted scanning); <see cref="CommitAsync"/> makes them durable.
/// </summary>
internal sealed class TopicLog : IAsyncDisposable
{
    private readonly IDevice _device;
    private readonly FasterLog _log;
    private readonly IDisposable? _commits;
    private const string HolesFile = "holes";
    private readonly int _pageSizeBits;
    private readonly int _segmentSizeBits;
    private readonly string _directory;
    private readonly List<(long From, long To)> _holes;
    private int _disposed;

    // What the last commit made durable, segment files' directory entries included; see CommitAsync.
    private long _durableUntil;
    private long _syncedSegment = -1;
    private TaskCompletionSource _durableAdvanced = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private TopicLog(IDevice device, FasterLog log, IDisposable? commits, string directory, StorageOptions options, bool inMemory)
    {
        _device = device;
        _log = log;
        _commits = commits;
        _directory = directory;
        MaxRecordSize = options.MaxRecordSize;
        InMemory = inMemory;
        _pageSizeBits = options.PageSizeBits;
        _segmentSizeBits = options.SegmentSizeBits;
        _holes = inMemory ? [] : ReadHoles(directory);
        _durableUntil = log.CommittedUntilAddress;
        if (!inMemory)
        {
            // Whatever exists now is what recovery read; its directory entries become durable once, here. A log
            // with nothing committed has no segment file yet: its first commit creates one and flushes again.
            Internal.DirectorySync.Flush(directory);
            _syncedSegment = _durableUntil > log.BeginAddress ? SegmentOf(_durableUntil) : -1;
        }
    }

    /// <summary>True when nothing of this log is written to disk.</summary>
    public bool InMemory { get; }

    public int MaxRecordSize { get; }

    /// <summary>Address of the oldest record still in the log.</summary>
    public long BeginAddress => _log.BeginAddress;

    /// <summary>Address the next record will get.</summary>
    public long TailAddress => _log.TailAddress;

    /// <summary>Records below this address are on disk and survive a restart, or a power cut.</summary>
    public long CommittedUntilAddress => Volatile.Read(ref _durableUntil);

    /// <summary>
    /// Opens the log in <paramref name="directory"/>, recovering from its last commit if there is one. An
    /// <paramref name="inMemory"/> log writes nothing to disk: pages leaving memory are dropped, and readers that
    /// fall behind skip past them.
    /// </summary>
    public static TopicLog Open(string directory, StorageOptions options, bool inMemory = false)
    {
        Directory.CreateDirectory(directory);
        IDevice device = inMemory
            ? new NullDevice()
            : Devices.CreateLogDevice(Path.Combine(directory, "log"), preallocateFile: false, recoverDevice: true);
        ILogCommitManager? commits = null;
        try
        {
            commits = inMemory ? new Internal.MemoryCommits() : CommitManagerFor(directory);
            var settings = new FasterLogSettings
            {
                LogDevice = device,
                LogCommitManager = commits,
                LogCommitDir = Path.Combine(directory, "commits"),
                PageSizeBits = options.PageSizeBits,
                MemorySizeBits = options.MemorySizeBits,
                SegmentSizeBits = options.SegmentSizeBits,
                AutoRefreshSafeTailAddress = true,
                TryRecoverLatest = !inMemory,
                RemoveOutdatedCommits = true,

                // Records carry their own CRC (LogRecord), checked on every read; FasterLog's checksums are checked only
                // on pages read back from disk, and a mismatch there throws out of the iterator mid-delivery.
                LogChecksum = LogChecksumType.None,
            };
            var log = new FasterLog(settings);
            return new TopicLog(device, log, commits, directory, options, inMemory);
        }
        catch
        {
            commits?.Dispose();
            device.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The commit slots file, except for a log written before it existed: that one keeps FasterLog's own commit files
    /// (null here), so that it recovers from them.
    /// </summary>
    private static Internal.CommitSlots? CommitManagerFor(string directory)
    {
        var legacy = Path.Combine(directory, "commits");
        var hasLegacyCommits = Directory.Exists(legacy) && Directory.EnumerateFiles(legacy, "*", SearchOption.AllDirectories).Any();
        return hasLegacyCommits && !File.Exists(Path.Combine(directory, Internal.CommitSlots.FileName)) ? null : new Internal.CommitSlots(directory);
    }

    /// <summary>Appends without waiting; false when the in-memory tail is full and must first flush.</summary>
    public bool TryAppend(ReadOnlySpan<byte> record, out long address) => _log.TryEnqueue(record, out address);

    /// <summary>Appends, waiting for the in-memory tail to flush if it is full.</summary>
    public ValueTask<long> AppendAsync(ReadOnlyMemory<byte> record, CancellationToken cancellationToken) =>
        _log.EnqueueAsync(record, cancellationToken);

    /// <summary>A scanner from <paramref name="beginAddress"/> that follows the tail, including uncommitted records.</summary>
    public LogScanner Tail(long beginAddress) => new(this, _log, beginAddress, long.MaxValue);

    /// <summary>A scanner over <c>[beginAddress, endAddress)</c>, including uncommitted records.</summary>
    public LogScanner Range(long beginAddress, long endAddress) => new(this, _log, beginAddress, endAddress);

    /// <summary>True once recovery has cut a corrupt tail out of this log.</summary>
    public bool HasHoles => _holes.Count > 0;

    /// <summary><paramref name="address"/>, or the end of the hole it falls in.</summary>
    public long StepOverHole(long address)
    {
        foreach (var (from, to) in _holes)
        {
            if (address >= from && address < to)
            {
                return to;
            }
        }

        return address;
    }

    /// <summary>
    /// Checks the records of the last segment (where a crash or a damaged disk tears a log) and cuts the log back
    /// to its last valid record: from there to the tail becomes a hole that readers step over, recorded beside the
    /// log so it is remembered. New records go after the old tail. Returns what was dropped, or null.
    /// </summary>
    public async ValueTask<DroppedTail?> CutCorruptTailAsync(CancellationToken cancellationToken)
    {
        var tail = _log.TailAddress;
        var lastSegment = ((tail - 1) >> _segmentSizeBits) << _segmentSizeBits;
        var from = Math.Max(Math.Max(_log.BeginAddress, lastSegment), _holes.Count > 0 ? _holes[^1].To : 0);
        if (from >= tail)
        {
            return null;
        }

        long validUntil = from;
        long? firstBad = null;
        var dropped = 0;
        using (var scanner = Range(from, tail))
        {
            while (true)
            {
                while (scanner.GetNext(out var entry, out var length, out var address))
                {
                    if (firstBad is null && LogRecord.TryRead(entry.AsSpan(0, length), out _))
                    {
                        validUntil = scanner.NextAddress;
                    }
                    else
                    {
                        firstBad ??= address;
                        dropped++;
                    }
                }

                if (scanner.NextAddress >= tail || !await scanner.WaitAsync(cancellationToken).ConfigureAwait(false))
                {
                    break;
                }
            }
        }

        if (validUntil >= tail)
        {
            return null;
        }

        _holes.Add((validUntil, tail));
        WriteHoles();
        return new DroppedTail(validUntil, tail, dropped);
    }

    /// <summary>
    /// An address from which a scan meets every record whose timestamp is at or after <paramref name="timestampMs"/>,
    /// found by a binary search over log pages (records never span pages and timestamps never decrease along the
    /// log), so only a handful of pages are read however long the log is.
    /// </summary>
    public async ValueTask<long> SeekTimestampAsync(long timestampMs, CancellationToken cancellationToken)
    {
        var begin = _log.BeginAddress;
        var tail = _log.TailAddress;
        var low = begin >> _pageSizeBits;
        var high = (tail - 1) >> _pageSizeBits;
        var found = begin;
        while (low <= high && tail > begin)
        {
            var page = low + ((high - low) / 2);
            var pageStart = Math.Max(page << _pageSizeBits, begin);
            var first = await FirstTimestampAsync(pageStart, Math.Min((page + 1) << _pageSizeBits, tail), cancellationToken).ConfigureAwait(false);
            if (first is null || first < timestampMs)
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

    private async ValueTask<long?> FirstTimestampAsync(long from, long until, CancellationToken cancellationToken)
    {
        using var iterator = Range(from, until);
        while (true)
        {
            if (iterator.GetNext(out var entry, out var length, out _))
            {
                return LogRecord.TryReadTimestamp(entry.AsSpan(0, length), out var timestampMs) ? timestampMs : null;
            }

            if (iterator.NextAddress >= until || !await iterator.WaitAsync(cancellationToken).ConfigureAwait(false))
            {
                return null;
            }
        }
    }

    /// <summary>Drops every record below <paramref name="address"/>; disk is freed a segment at a time.</summary>
    public void TruncateUntil(long address)
    {
        if (address > _log.BeginAddress)
        {
            _log.TruncateUntil(address);
        }
    }

    /// <summary>Commits everything appended so far (and any truncation) to disk.</summary>
    public async ValueTask CommitAsync(CancellationToken cancellationToken)
    {
        if (!InMemory && (_log.CommittedUntilAddress < _log.TailAddress || _log.CommittedBeginAddress < _log.BeginAddress))
        {
            await _log.CommitAsync(cancellationToken).ConfigureAwait(false);
            var until = _log.CommittedUntilAddress;

            // FasterLog creates a segment file when it first writes to it, and the file's own write-through writes do
            // not make the directory entry naming it durable. Before records in a new segment count as durable, the
            // directory is flushed, so a power cut cannot take the file away with acknowledged records in it.
            var segment = SegmentOf(until);
            if (segment > _syncedSegment)
            {
                Internal.DirectorySync.Flush(_directory);
                _syncedSegment = segment;
                DirectorySyncs++;
            }

            if (until > Volatile.Read(ref _durableUntil))
            {
                Volatile.Write(ref _durableUntil, until);
                Interlocked.Exchange(ref _durableAdvanced, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            }
        }
    }

    /// <summary>Directory flushes made because a commit reached a new segment file (tests count them).</summary>
    public int DirectorySyncs { get; private set; }

    /// <summary>Wakes <see cref="WaitForCommitAsync"/> callers so they look at a commit failure at once.</summary>
    public void WakeCommitWaiters() =>
        Interlocked.Exchange(ref _durableAdvanced, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Completes when <see cref="CommittedUntilAddress"/> reaches <paramref name="address"/>; starts no commit itself.</summary>
    public async ValueTask WaitForCommitAsync(long address, CancellationToken cancellationToken)
    {
        while (true)
        {
            var advanced = Volatile.Read(ref _durableAdvanced);
            if (Volatile.Read(ref _durableUntil) >= address)
            {
                return;
            }

            await advanced.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private long SegmentOf(long address) => address <= 0 ? -1 : (address - 1) >> _segmentSizeBits;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            await CommitAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            _log.Dispose();
            _commits?.Dispose();
            _device.Dispose();
        }
    }

    private static List<(long From, long To)> ReadHoles(string directory)
    {
        var path = Path.Combine(directory, HolesFile);
        if (!File.Exists(path))
        {
            return [];
        }

        var bytes = File.ReadAllBytes(path);
        var holes = new List<(long, long)>();
        for (var at = 0; at + 16 <= bytes.Length; at += 16)
        {
            holes.Add((BitConverter.ToInt64(bytes, at), BitConverter.ToInt64(bytes, at + 8)));
        }

        return holes;
    }

    private void WriteHoles()
    {
        var bytes = new byte[_holes.Count * 16];
        for (var i = 0; i < _holes.Count; i++)
        {
            BitConverter.TryWriteBytes(bytes.AsSpan(i * 16), _holes[i].From);
            BitConverter.TryWriteBytes(bytes.AsSpan((i * 16) + 8), _holes[i].To);
        }

        var path = Path.Combine(_directory, HolesFile);
        File.WriteAllBytes(path + ".tmp", bytes);
        File.Move(path + ".tmp", path, overwrite: true);
    }
}

/// <summary>What recovery cut from a log's tail: the records in <c>[From, To)</c>, <see cref="Records"/> of them still recognisable.</summary>
internal readonly record struct DroppedTail(long From, long To, int Records);
