using System.Runtime;
using Zaichik.Benchmarks;
using Zaichik.Benchmarks.Workloads;

BenchmarkSettings settings;
try
{
    if (args.Any(arg => arg is "-h" or "--help"))
    {
        Console.WriteLine(BenchmarkSettings.Usage);
        return 0;
    }

    settings = BenchmarkSettings.Parse(args);
}
catch (ArgumentException problem)
{
    Console.Error.WriteLine(problem.Message);
    Console.Error.WriteLine(BenchmarkSettings.Usage);
    return 2;
}

IWorkload[] all = [new PublishWorkload(), new ReplayWorkload(), new DurableReplayWorkload(), new FanOutWorkload(), new DedupWorkload(), new DurabilityWorkload(), new TopicScaleWorkload(), new ConsumerGroupWorkload(), new WideFanOutWorkload()];
var selected = all.Where(workload => settings.Workloads.Contains(workload.Id)).ToArray();

using var monitor = new ResourceMonitor();
using var allocations = settings.SampleAllocations ? new AllocationSampler() : null;
var results = new ResultTable();
var runStart = ResourceSnapshot.Take();
await using (var context = await BenchmarkContext.CreateAsync(settings))
{
    Console.WriteLine($"Zaichik benchmarks: {context.ServerDescription}; {Environment.ProcessorCount} cores, " +
        $"{(GCSettings.IsServerGC ? "server" : "workstation")} GC; {settings.Messages:N0} messages; " +
        $"w3 at {settings.FanOutRate:N0} msgs/s for {settings.FanOutDuration.TotalSeconds:0} s; limit {settings.WorkloadTimeout.TotalSeconds:0} s per workload");

    using (var warmUpLimit = new CancellationTokenSource(settings.WorkloadTimeout))
    {
        await WarmUp.RunAsync(context, warmUpLimit.Token);
    }

    foreach (var workload in selected)
    {
        allocations?.TakeTop(0);
        monitor.TakePoolWindow();
        await WorkloadRunner.RunAsync(workload, context, results);
        Console.WriteLine($"  {workload.Id}: {monitor.TakePoolWindow()}");
        if (allocations is not null)
        {
            Console.WriteLine($"  sampled allocations in {workload.Id}: " +
                string.Join(", ", allocations.TakeTop(12).Select(top => $"{top.Type} {top.Bytes / 1048576.0:0} MiB")));
        }
    }
}

var run = ResourceSnapshot.Take().Since(runStart);
Console.WriteLine();
Console.WriteLine(results.ToMarkdown());
Console.WriteLine(
    $"Whole run ({(settings.InProcess ? "broker and client in one process" : "client process only")}): {run.Elapsed.TotalSeconds:0.0} s, " +
    $"CPU {run.CpuTime.TotalSeconds:0.0} s ({run.CoresUsed:0.00} cores), peak working set {ResourceMonitor.PeakWorkingSetBytes / 1048576.0:0} MiB, " +
    $"peak GC heap {monitor.PeakHeapBytes / 1048576.0:0} MiB, allocated {run.AllocatedBytes / 1048576.0:N0} MiB, GC {run.Gcs} ({run.GcPause.TotalMilliseconds:0} ms pause). " +
    "CPU, allocation and GC columns are per phase for the whole process.");

return results.Results.Any(result => result.Status != WorkloadStatus.Completed) ? 1 : 0;
