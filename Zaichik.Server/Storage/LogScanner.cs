using FASTER.core;

namespace Zaichik.Server.Storage;

/// <summary>
/// Reads a topic's log from an address onwards, stepping over the log's holes (ranges dropped as a corrupt tail
/// at recovery), which FasterLog itself knows nothing about. Everything that reads a log reads through this.
/// </summary>
internal sealed unsafe class LogScanner : IDisposable
{
    private readonly TopicLog _log;
    private readonly FasterLog _fasterLog;
    private readonly long _end;
    private FasterLogScanIterator _iterator;

    public LogScanner(TopicLog log, FasterLog fasterLog, long begin, long end)
    {
        _log = log;
        _fasterLog = fasterLog;
        _end = end;
        _iterator = Open(begin);
    }

    /// <summary>Address of the next record this scanner reads.</summary>
    public long NextAddress => _iterator.NextAddress;

    /// <summary>The next record as a copy; false when none is readable yet (wait with <see cref="WaitAsync"/>).</summary>
    public bool GetNext(out byte[] entry, out int length, out long address)
    {
        StepOverHole();
        return _iterator.GetNext(out entry, out length, out address, out _);
    }

    /// <summary>The next record in place, under epoch protection: call <see cref="UnsafeRelease"/> at once, with no await in between.</summary>
    public bool UnsafeGetNext(out byte* entry, out int length, out long address, out long nextAddress)
    {
        StepOverHole();
        return _iterator.UnsafeGetNext(out entry, out length, out address, out nextAddress);
    }

    public void UnsafeRelease() => _iterator.UnsafeRelease();

    /// <summary>Waits until more records can be read; false when the scan has reached its end or the log closed.</summary>
    public ValueTask<bool> WaitAsync(CancellationToken cancellationToken) => _iterator.WaitAsync(cancellationToken);

    public void Dispose() => _iterator.Dispose();

    private FasterLogScanIterator Open(long begin) =>
        _fasterLog.Scan(_log.StepOverHole(Math.Max(begin, _fasterLog.BeginAddress)), _end, scanUncommitted: true);

    private void StepOverHole()
    {
        if (!_log.HasHoles)
        {
            return;
        }

        var next = _iterator.NextAddress;
        var after = _log.StepOverHole(next);
        if (after != next)
        {
            _iterator.Dispose();
            _iterator = Open(after);
        }
    }
}
