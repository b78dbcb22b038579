using System.Diagnostics;

namespace Zaichik.Benchmarks;

/// <summary>
/// Latencies in <see cref="Stopwatch"/> ticks, kept in an array allocated up front so that recording neither
/// allocates nor locks. One writer per recorder; merge recorders with <see cref="Summarize"/> once writing stopped.
/// Samples beyond the capacity are counted but not kept.
/// </summary>
internal sealed class LatencyRecorder(int capacity)
{
    private readonly long[] _ticks = new long[capacity];
    private int _count;
    private long _overflow;

    public int Count => _count;

    public long Overflow => _overflow;

    public void Record(long ticks)
    {
        if (_count < _ticks.Length)
        {
            _ticks[_count++] = ticks;
        }
        else
        {
            _overflow++;
        }
    }

    /// <summary>Percentiles (nearest rank) over every sample of <paramref name="recorders"/>.</summary>
    public static LatencySummary Summarize(params IEnumerable<LatencyRecorder> recorders)
    {
        var all = recorders.SelectMany(recorder => recorder._ticks.Take(recorder._count)).ToArray();
        if (all.Length == 0)
        {
            return default;
        }

        Array.Sort(all);
        return new LatencySummary(
            all.Length,
            ToMilliseconds(At(0.50)),
            ToMilliseconds(At(0.99)),
            ToMilliseconds(At(0.999)),
            ToMilliseconds(all[^1]));

        long At(double percentile) => all[Math.Clamp((int)Math.Ceiling(percentile * all.Length) - 1, 0, all.Length - 1)];
    }

    private static double ToMilliseconds(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}

/// <summary>Latency percentiles in milliseconds over <see cref="Count"/> samples.</summary>
internal readonly record struct LatencySummary(int Count, double P50Ms, double P99Ms, double P999Ms, double MaxMs)
{
    public override string ToString() =>
        Count == 0 ? "-" : $"{Format(P50Ms)} / {Format(P99Ms)} / {Format(P999Ms)} / {Format(MaxMs)}";

    private static string Format(double ms) => ms < 10 ? $"{ms:0.000}" : $"{ms:0.0}";
}
