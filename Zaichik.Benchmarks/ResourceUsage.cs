using System.Diagnostics;

namespace Zaichik.Benchmarks;

/// <summary>
/// Process-wide counters at one moment. With an in-process server they cover broker and client together,
/// which is the point: on a 2-core machine both compete for the same cores.
/// </summary>
internal readonly record struct ResourceSnapshot(
    long Timestamp,
    TimeSpan CpuTime,
    long AllocatedBytes,
    int Gen0,
    int Gen1,
    int Gen2,
    TimeSpan GcPause,
    long ThreadPoolWorkItems,
    long LockContentions)
{
    public static ResourceSnapshot Take() => new(
        Stopwatch.GetTimestamp(),
        Environment.CpuUsage.TotalTime,
        GC.GetTotalAllocatedBytes(precise: false),
        GC.CollectionCount(0),
        GC.CollectionCount(1),
        GC.CollectionCount(2),
        GC.GetTotalPauseDuration(),
        ThreadPool.CompletedWorkItemCount,
        Monitor.LockContentionCount);

    public ResourceUsage Since(ResourceSnapshot start) => new(
        Stopwatch.GetElapsedTime(start.Timestamp, Timestamp),
        CpuTime - start.CpuTime,
        AllocatedBytes - start.AllocatedBytes,
        Gen0 - start.Gen0,
        Gen1 - start.Gen1,
        Gen2 - start.Gen2,
        GcPause - start.GcPause,
        ThreadPoolWorkItems - start.ThreadPoolWorkItems,
        LockContentions - start.LockContentions);
}

/// <summary>
/// What the process spent between two snapshots. Thread-pool work items and lock contentions per message show
/// how many hand-offs between threads (and collisions on locks) the broker and client pay for each message.
/// </summary>
internal readonly record struct ResourceUsage(
    TimeSpan Elapsed,
    TimeSpan CpuTime,
    long AllocatedBytes,
    int Gen0,
    int Gen1,
    int Gen2,
    TimeSpan GcPause,
    long ThreadPoolWorkItems,
    long LockContentions)
{
    /// <summary>CPU seconds per wall second: 2.0 means both cores of a 2-core machine were busy.</summary>
    public double CoresUsed => Elapsed > TimeSpan.Zero ? CpuTime / Elapsed : 0;

    public string Gcs => $"{Gen0}/{Gen1}/{Gen2}";
}

/// <summary>
/// Samples, on a dedicated thread every 5 ms, what has no counter of its own: the GC heap's peak, the thread
/// pool's queue length and thread count, and how late the sampler itself woke. A queue that stays long while
/// the sampler is on time means pool starvation (something blocks pool threads); a late wake-up means the whole
/// process stalled (a GC pause, or the VM not being scheduled). The working set's peak comes from the OS.
/// </summary>
internal sealed class ResourceMonitor : IDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(5);

    private readonly Thread _thread;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private long _peakHeapBytes;
    private PoolWindow _window;

    public ResourceMonitor()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "resource-monitor" };
        _thread.Start();
    }

    public long PeakHeapBytes
    {
        get
        {
            lock (_lock)
            {
                return Math.Max(_peakHeapBytes, GC.GetTotalMemory(forceFullCollection: false));
            }
        }
    }

    public static long PeakWorkingSetBytes
    {
        get
        {
            using var process = Process.GetCurrentProcess();
            return process.PeakWorkingSet64;
        }
    }

    /// <summary>The thread-pool figures since the previous call.</summary>
    public PoolWindow TakePoolWindow()
    {
        lock (_lock)
        {
            var window = _window;
            _window = default;
            return window;
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _thread.Join();
        _stop.Dispose();
    }

    private void Run()
    {
        var last = Stopwatch.GetTimestamp();
        while (!_stop.IsCancellationRequested)
        {
            Thread.Sleep(Interval);
            var now = Stopwatch.GetTimestamp();
            var gap = Stopwatch.GetElapsedTime(last, now);
            last = now;
            var heap = GC.GetTotalMemory(forceFullCollection: false);
            var queued = ThreadPool.PendingWorkItemCount;
            var threads = ThreadPool.ThreadCount;
            lock (_lock)
            {
                _peakHeapBytes = Math.Max(_peakHeapBytes, heap);
                _window = new PoolWindow(
                    Math.Max(_window.MaxQueued, queued),
                    Math.Max(_window.MaxThreads, threads),
                    gap > _window.LongestGap ? gap : _window.LongestGap);
            }
        }
    }
}

/// <summary>Thread-pool extremes over a period; <see cref="LongestGap"/> is the sampler's longest sleep of a nominal 5 ms.</summary>
internal readonly record struct PoolWindow(long MaxQueued, int MaxThreads, TimeSpan LongestGap)
{
    public override string ToString() =>
        $"thread pool up to {MaxThreads} threads and {MaxQueued:N0} queued items; longest sampler gap {LongestGap.TotalMilliseconds:0} ms";
}
