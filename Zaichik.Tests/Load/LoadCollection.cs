namespace Zaichik.Tests.Load;

/// <summary>
/// The load tests measure the whole process (managed heap, file descriptors, threads), so they run alone: xunit runs
/// this collection after the parallel ones, one test at a time.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LoadCollection
{
    public const string Name = "Load";
}
