namespace Zaichik.Benchmarks;

/// <summary>Runs one workload within its time limit and turns an escape (hang, exception) into a table row.</summary>
internal static class WorkloadRunner
{
    /// <summary>How long past the limit a workload may take to notice its cancelled token and wind down.</summary>
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(30);

    public static async Task RunAsync(IWorkload workload, BenchmarkContext context, ResultTable results)
    {
        var limit = context.Settings.WorkloadTimeout;
        using var deadline = new CancellationTokenSource(limit);
        var reportedBefore = results.Results.Count;
        var run = Task.Run(() => workload.RunAsync(context, results, deadline.Token));
        try
        {
            await run.WaitAsync(limit + Grace);
            if (deadline.IsCancellationRequested && results.Results.Count == reportedBefore)
            {
                results.Add(WorkloadResult.Failure(workload.Title, WorkloadStatus.TimedOut, $"exceeded {limit.TotalSeconds:0} s"));
            }
        }
        catch (TimeoutException)
        {
            results.Add(WorkloadResult.Failure(workload.Title, WorkloadStatus.TimedOut, $"hung past {limit.TotalSeconds:0} s and was abandoned"));
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            results.Add(WorkloadResult.Failure(workload.Title, WorkloadStatus.TimedOut, $"exceeded {limit.TotalSeconds:0} s"));
        }
        catch (Exception exception)
        {
            results.Add(WorkloadResult.Failure(workload.Title, WorkloadStatus.Failed, $"{exception.GetType().Name}: {exception.Message}"));
        }
    }
}
