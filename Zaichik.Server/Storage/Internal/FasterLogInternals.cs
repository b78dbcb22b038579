using System.Reflection;
using System.Runtime.CompilerServices;
using FASTER.core;

namespace Zaichik.Server.Storage.Internal;

/// <summary>
/// The one fact about a FasterLog that its public surface does not give: the head address, below which pages are no
/// longer in memory. Readers read records below it straight from the segment files (and check them as they go)
/// instead of letting a FasterLog iterator load pages into buffers of its own. A log's allocator is looked up once
/// (a field named in code, which trimming keeps), and its head is read through an <see cref="UnsafeAccessorAttribute"/>:
/// no compiled expressions, so a native-compiled broker reads it too. The FASTER version is pinned, and
/// <c>TopicLogTests.FasterLog_head_address_is_read_through_the_pinned_internals</c> fails if either field moves.
/// </summary>
internal static class FasterLogInternals
{
    private static readonly FieldInfo AllocatorField = typeof(FasterLog).GetField("allocator", BindingFlags.Instance | BindingFlags.NonPublic)
        ?? throw new MissingFieldException(nameof(FasterLog), "allocator");

    /// <summary>The log's allocator (internal to FASTER), for <see cref="HeadAddress"/>; it lives as long as the log.</summary>
    public static object Allocator(FasterLog log) => AllocatorField.GetValue(log) ?? throw new InvalidOperationException("the FasterLog has no allocator");

    /// <summary>The head address of an allocator from <see cref="Allocator"/>.</summary>
    public static long HeadAddress(object allocator) => Head(allocator);

    // HeadAddress is declared by FASTER's internal AllocatorBase<Empty, byte>, so the type is named to the runtime as a string.
    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "HeadAddress")]
    private static extern ref long Head([UnsafeAccessorType("FASTER.core.AllocatorBase`2[[FASTER.core.Empty, FASTER.core],[System.Byte, System.Private.CoreLib]], FASTER.core")] object allocator);
}
