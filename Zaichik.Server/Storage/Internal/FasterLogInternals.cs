using System.Linq.Expressions;
using System.Reflection;
using FASTER.core;

namespace Zaichik.Server.Storage.Internal;

/// <summary>
/// The one fact about a FasterLog that its public surface does not give: the head address, below which pages are no
/// longer in memory. Readers read records below it straight from the segment files (and check them as they go)
/// instead of letting a FasterLog iterator load pages into buffers of its own. The accessor is compiled once; the
/// FASTER version is pinned, and <c>FasterLogInternalsTests</c> fails if the field ever moves.
/// </summary>
internal static class FasterLogInternals
{
    private static readonly Func<FasterLog, long> Head = Compile();

    public static long HeadAddress(FasterLog log) => Head(log);

    private static Func<FasterLog, long> Compile()
    {
        var allocatorField = typeof(FasterLog).GetField("allocator", BindingFlags.Instance | BindingFlags.NonPublic)
            ?? throw new MissingFieldException(nameof(FasterLog), "allocator");
        var headField = allocatorField.FieldType.GetField("HeadAddress", BindingFlags.Instance | BindingFlags.Public)
            ?? throw new MissingFieldException(allocatorField.FieldType.Name, "HeadAddress");
        var log = Expression.Parameter(typeof(FasterLog), "log");
        var read = Expression.Field(Expression.Field(log, allocatorField), headField);
        return Expression.Lambda<Func<FasterLog, long>>(read, log).Compile();
    }
}
