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
    private int _disposed;

    private TopicLog(IDevice device, FasterLog log, int maxRecordSize)
    {
        _device = device;
        _log = log;
        MaxRecordSize = maxRecordSize;
    }

    public int MaxRecordSize { get; }

    /// <summary>Address of the oldest record still in the log.</summary>
    public long BeginAddress => _log.BeginAddress;

    /// <summary>Address the next record will get.</summary>
    public long TailAddress => _log.TailAddress;

    /// <summary>Records below this address are on disk and survive a restart.</summary>
    public long CommittedUntilAddress => _log.CommittedUntilAddress;

    /// <summary>Opens the log in <paramref name="directory"/>, recovering from its last commit if there is one.</summary>
    public static TopicLog Open(string directory, StorageOptions options)
    {
        Directory.CreateDirectory(directory);
        var device = Devices.CreateLogDevice(Path.Combine(directory, "log"), preallocateFile: false, recoverDevice: true);
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
                TryRecoverLatest = true,
                RemoveOutdatedCommits = true,
            };
            var log = new FasterLog(settings);
            return new TopicLog(device, log, options.MaxRecordSize);
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
        if (_log.CommittedUntilAddress < _log.TailAddress || _log.CommittedBeginAddress < _log.BeginAddress)
        {
            await _log.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

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
