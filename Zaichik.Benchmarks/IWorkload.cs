namespace Zaichik.Benchmarks;

/// <summary>One benchmark scenario. It adds a result per measured phase to the table as each phase ends.</summary>
internal interface IWorkload
{
    /// <summary>The command-line name: w1 .. w5.</summary>
    string Id { get; }

    /// <summary>A short title for the table, used when the workload fails before reporting anything.</summary>
    string Title { get; }

    /// <summary>
    /// Runs the scenario. <paramref name="cancellationToken"/> fires at the workload's time limit; every loop
    /// checks it and reports its phase as timed out with what it got so far.
    /// </summary>
    Task RunAsync(BenchmarkContext context, ResultTable results, CancellationToken cancellationToken);
}
