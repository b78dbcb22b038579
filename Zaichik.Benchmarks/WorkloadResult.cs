using System.Globalization;

namespace Zaichik.Benchmarks;

internal enum WorkloadStatus
{
    Completed,
    TimedOut,
    Failed,
}

/// <summary>One line of the result table: a measured phase of a workload.</summary>
internal sealed record WorkloadResult
{
    public required string Name { get; init; }

    /// <summary>Messages the throughput is computed from (published, or read back).</summary>
    public long Messages { get; init; }

    /// <summary>The timed part only: from the first send to the last Ack or Commit.</summary>
    public TimeSpan Elapsed { get; init; }

    public int PayloadBytes { get; init; } = BenchmarkContext.PayloadSize;

    public LatencySummary Latency { get; init; }

    /// <summary>The goal, e.g. ">= 500k msgs/s"; empty when there is none.</summary>
    public string Target { get; init; } = string.Empty;

    /// <summary>Whether the goal was reached; null when there is none.</summary>
    public bool? TargetMet { get; init; }

    /// <summary>The peers' figures for the same workload.</summary>
    public string Peers { get; init; } = string.Empty;

    public ResourceUsage Usage { get; init; }

    public WorkloadStatus Status { get; init; } = WorkloadStatus.Completed;

    public string Notes { get; init; } = string.Empty;

    public double MessagesPerSecond => Elapsed > TimeSpan.Zero ? Messages / Elapsed.TotalSeconds : 0;

    /// <summary>Payload bytes only, in MB (10^6 bytes) per second.</summary>
    public double MegabytesPerSecond => MessagesPerSecond * PayloadBytes / 1e6;

    public static WorkloadResult Failure(string name, WorkloadStatus status, string notes) =>
        new() { Name = name, Status = status, TargetMet = false, Notes = notes };

    /// <summary>The one-line progress report printed as the phase finishes.</summary>
    public string Describe()
    {
        var line = $"{Name}: ";
        line += Status switch
        {
            WorkloadStatus.TimedOut => "TIMED OUT; ",
            WorkloadStatus.Failed => "FAILED; ",
            _ => string.Empty,
        };

        if (Elapsed > TimeSpan.Zero)
        {
            line += Invariant($"{Messages:N0} msgs in {Elapsed.TotalSeconds:0.00} s = {MessagesPerSecond:N0} msgs/s, {MegabytesPerSecond:0.0} MB/s; ");
        }

        if (Latency.Count > 0)
        {
            line += Invariant($"latency ms p50/p99/p99.9/max {Latency}; ");
        }

        if (Usage.Elapsed > TimeSpan.Zero)
        {
            line += Invariant($"CPU {Usage.CpuTime.TotalSeconds:0.00} s ({Usage.CoresUsed:0.00} cores), alloc {AllocatedPerMessage():N0} B/msg, GC {Usage.Gcs} ({Usage.GcPause.TotalMilliseconds:0} ms pause), thread-pool items {PerMessage(Usage.ThreadPoolWorkItems):0.00}/msg, lock contentions {Usage.LockContentions:N0}; ");
        }

        if (TargetMet is { } met)
        {
            line += $"target {Target}: {(met ? "met" : "MISSED")}; ";
        }

        return (line + Notes).TrimEnd(' ', ';');
    }

    public double AllocatedPerMessage() => PerMessage(Usage.AllocatedBytes);

    private double PerMessage(long total) => Messages > 0 ? (double)total / Messages : 0;

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
