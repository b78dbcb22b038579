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
    private readonly int _pageSizeBits;
    private int _disposed;

    private TopicLog(IDevice device, FasterLog log, int maxRecordSize, bool inMemory, int pageSizeBits)
    {
        _device = device;
        _log = log;
        MaxRecordSize = maxRecordSize;
        InMemory = inMemory;
        _pageSizeBits = pageSizeBits;
    }

    /// <summary>True when nothing of this log is written to disk.</summary>
    public bool InMemory { get; }

    public int MaxRecordSize { get; }

    /// <summary>Address of the oldest record still in the log.</summary>
    public long BeginAddress => _log.BeginAddress;

    /// <summary>Address the next record will get.</summary>
    public long TailAddress => _log.TailAddress;

    /// <summary>Records below this address are on disk and survive a restart.</summary>
    public long CommittedUntilAddress => _log.CommittedUntilAddress;

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
        try
        {
            var settings = new FasterLogSettings
            {
                LogDevice = device,
                LogCommitDir = Path.Combine(directory, "commits"),
                PageSizeBits = options.PageSizeBits,
                MemorySizeBits = options.MemorySizeBits,
                SegmentSizeBits = options.SegmentSizeBits,
                AutoRefreshSafeTailAddress = true,
                TryRecoverLatest = !inMemory,
                RemoveOutdatedCommits = true,

                // Each entry carries a checksum, so a torn or corrupted record is recognised instead of delivered.
                LogChecksum = inMemory ? LogChecksumType.None : LogChecksumType.PerEntry,
            };
            var log = new FasterLog(settings);
            return new TopicLog(device, log, options.MaxRecordSize, inMemory, options.PageSizeBits);
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>Appends without waiting; false when the in-memory tail is full and must first flush.</summary>
    public bool TryAppend(ReadOnlySpan<byte> record, out long address) => _log.TryEnqueue(record, out address);

    /// <summary>Appends, waiting for the in-memory tail to flush if it is full.</summary>
    public ValueTask<long> AppendAsync(ReadOnlyMemory<byte> record, CancellationToken cancellationToken) =>
        _log.EnqueueAsync(record, cancellationToken);

    /// <summary>An iterator from <paramref name="beginAddress"/> that follows the tail, including uncommitted records.</summary>
    public FasterLogScanIterator Tail(long beginAddress) =>
        _log.Scan(Math.Max(beginAddress, _log.BeginAddress), long.MaxValue, scanUncommitted: true);

    /// <summary>An iterator over <c>[beginAddress, endAddress)</c>, including uncommitted records.</summary>
    public FasterLogScanIterator Range(long beginAddress, long endAddress) =>
        _log.Scan(Math.Max(beginAddress, _log.BeginAddress), endAddress, scanUncommitted: true);

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
            if (iterator.GetNext(out var entry, out var length, out _, out _))
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
        }
    }

    /// <summary>Completes when <see cref="CommittedUntilAddress"/> reaches <paramref name="address"/>; starts no commit itself.</summary>
    public ValueTask WaitForCommitAsync(long address, CancellationToken cancellationToken) =>
        _log.WaitForCommitAsync(address, 0, cancellationToken);

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
            _device.Dispose();
        }
    }
}
