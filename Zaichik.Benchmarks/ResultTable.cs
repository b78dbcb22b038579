using System.Globalization;
using System.Text;

namespace Zaichik.Benchmarks;

/// <summary>Collects the results as workloads finish, prints each at once, and renders them as one markdown table.</summary>
internal sealed class ResultTable
{
    private readonly List<WorkloadResult> _results = [];
    private readonly Lock _lock = new();

    public IReadOnlyList<WorkloadResult> Results
    {
        get
        {
            lock (_lock)
            {
                return [.. _results];
            }
        }
    }

    public void Add(WorkloadResult result)
    {
        lock (_lock)
        {
            _results.Add(result);
        }

        Console.WriteLine(result.Describe());
    }

    public string ToMarkdown()
    {
        var text = new StringBuilder();
        text.AppendLine("| Workload | Messages | Time (s) | msgs/s | MB/s | Latency ms p50 / p99 / p99.9 / max | Target | Peers | CPU s (cores) | Alloc B/msg | GC 0/1/2 (pause ms) | Notes |");
        text.AppendLine("|---|--:|--:|--:|--:|--:|---|---|--:|--:|--:|---|");
        foreach (var result in Results)
        {
            var timed = result.Elapsed > TimeSpan.Zero;
            var measured = result.Usage.Elapsed > TimeSpan.Zero;
            var notes = result.Status switch
            {
                WorkloadStatus.TimedOut => "**timed out** " + result.Notes,
                WorkloadStatus.Failed => "**failed** " + result.Notes,
                _ => result.Notes,
            };
            string[] cells =
            [
                result.Name,
                timed ? Invariant($"{result.Messages:N0}") : "-",
                timed ? Invariant($"{result.Elapsed.TotalSeconds:0.00}") : "-",
                timed ? Invariant($"{result.MessagesPerSecond:N0}") : "-",
                timed ? Invariant($"{result.MegabytesPerSecond:0.0}") : "-",
                result.Latency.ToString(),
                result.TargetMet switch
                {
                    true => $"{result.Target} met",
                    false => $"{result.Target} **missed**",
                    null => string.Empty,
                },
                result.Peers,
                measured ? Invariant($"{result.Usage.CpuTime.TotalSeconds:0.0} ({result.Usage.CoresUsed:0.00})") : "-",
                measured && result.Messages > 0 ? Invariant($"{result.AllocatedPerMessage():N0}") : "-",
                measured ? Invariant($"{result.Usage.Gcs} ({result.Usage.GcPause.TotalMilliseconds:0})") : "-",
                notes.Trim(),
            ];
            text.Append("| ").AppendJoin(" | ", cells.Select(cell => cell.Replace("|", "\\|", StringComparison.Ordinal))).AppendLine(" |");
        }

        return text.ToString();
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
