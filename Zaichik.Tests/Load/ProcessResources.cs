using System.Diagnostics;

namespace Zaichik.Tests.Load;

/// <summary>What this process holds: managed heap, working set, open file descriptors and threads.</summary>
internal static class ProcessResources
{
    /// <summary>Open file descriptors (sockets included), from /proc/self/fd; null where there is no /proc.</summary>
    public static int? OpenFileDescriptors() =>
        Directory.Exists("/proc/self/fd") ? Directory.GetFileSystemEntries("/proc/self/fd").Length : null;

    public static int Threads()
    {
        using var process = Process.GetCurrentProcess();
        return process.Threads.Count;
    }

    /// <summary>Live managed bytes after full, compacting collections (what is really held, not garbage awaiting a GC).</summary>
    public static long SettledHeapBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    public static string Mib(long bytes) => $"{bytes / (1024.0 * 1024.0):0.0} MiB";
}

/// <summary>
/// Samples the managed heap and the working set in the background while a load runs, and keeps the peaks. The
/// heap figure includes garbage not yet collected, so it is an upper bound on what was held.
/// </summary>
internal sealed class ResourceSampler : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _sampling;
    private long _peakHeap;
    private long _peakWorkingSet;
    private int _samples;
    private int _disposed;

    public ResourceSampler(TimeSpan interval)
    {
        _sampling = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(interval);
            try
            {
                do
                {
                    Sample();
                }
                while (await timer.WaitForNextTickAsync(_stop.Token));
            }
            catch (OperationCanceledException)
            {
            }

            Sample();
        });
    }

    public long PeakHeapBytes => Interlocked.Read(ref _peakHeap);

    public long PeakWorkingSetBytes => Interlocked.Read(ref _peakWorkingSet);

    public int Samples => Volatile.Read(ref _samples);

    /// <summary>Stops sampling; the peaks stay readable. Safe to call more than once.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync();
        await _sampling;
        _stop.Dispose();
    }

    private void Sample()
    {
        Max(ref _peakHeap, GC.GetTotalMemory(forceFullCollection: false));
        Max(ref _peakWorkingSet, Environment.WorkingSet);
        Interlocked.Increment(ref _samples);
    }

    private static void Max(ref long peak, long value)
    {
        var current = Interlocked.Read(ref peak);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref peak, value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }
}
