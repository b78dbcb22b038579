using System.Runtime.InteropServices;

namespace Zaichik.Server.Storage;

/// <summary>
/// The file descriptors the storage layer may hold at once, shared by every topic. A process that runs out of
/// descriptors fails in places nobody handles (the runtime itself aborts when it cannot load a library it needs), so
/// storage stays inside a budget well below the process's limit: the registry closes idle topics to make room, and a
/// request that still finds none gets StorageFailure.
/// </summary>
internal sealed partial class FileBudget
{
    private int _inUse;

    public FileBudget(int limit)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        Limit = limit;
    }

    /// <summary>A budget that never runs out (tests of one topic).</summary>
    public static FileBudget Unlimited { get; } = new(int.MaxValue);

    public int Limit { get; }

    public int InUse => Volatile.Read(ref _inUse);

    /// <summary>Takes one descriptor from the budget; false when it is spent.</summary>
    public bool TryAcquire()
    {
        while (true)
        {
            var current = Volatile.Read(ref _inUse);
            if (current >= Limit)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _inUse, current + 1, current) == current)
            {
                return true;
            }
        }
    }

    public void Release() => Interlocked.Decrement(ref _inUse);

    public void Release(int count) => Interlocked.Add(ref _inUse, -count);

    /// <summary>
    /// The default budget: half of what the process may open beyond a reserve of <paramref name="reserve"/> for
    /// connections, the runtime and logging, and at least 16.
    /// </summary>
    public static int DefaultLimit(int reserve) => Math.Max(16, (int)Math.Min(int.MaxValue, (ProcessOpenFileLimit() - reserve) / 2));

    /// <summary>The process's soft limit on open files (RLIMIT_NOFILE), or a generous guess where it cannot be read.</summary>
    public static long ProcessOpenFileLimit()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return 16_384;
        }

        Span<ulong> limits = stackalloc ulong[2];
        var resource = OperatingSystem.IsLinux() ? 7 : 8;
        return GetRLimit(resource, ref MemoryMarshal.GetReference(limits)) == 0 ? (long)Math.Min(limits[0], int.MaxValue) : 16_384;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRLimit(int resource, ref ulong limits);
}

/// <summary>The storage layer has no file descriptor left in its <see cref="FileBudget"/> (or the process has none): a transient condition, never damage.</summary>
internal sealed class StorageExhaustedException(string message, Exception? inner = null) : IOException(message, inner)
{
    /// <summary>
    /// True for the errors that mean the process ran out of something (descriptors, memory, disk space), not that a
    /// file is bad: the request fails, and the topic is not quarantined for it.
    /// </summary>
    public static bool IsExhaustion(Exception exception) =>
        exception is StorageExhaustedException or OutOfMemoryException
        || (exception is IOException && exception.HResult is ErrnoNoMemory or ErrnoFileTable or ErrnoTooManyFiles or ErrnoNoSpace or ErrnoQuota);

    /// <summary>True for running out of descriptors only: closing idle topics can help with that, not with a full disk.</summary>
    public static bool IsDescriptorExhaustion(Exception exception) =>
        exception is StorageExhaustedException { InnerException: null or IOException { HResult: ErrnoFileTable or ErrnoTooManyFiles } }
        || (exception is IOException && exception.HResult is ErrnoFileTable or ErrnoTooManyFiles);

    private const int ErrnoNoMemory = 12;
    private const int ErrnoFileTable = 23;
    private const int ErrnoTooManyFiles = 24;
    private const int ErrnoNoSpace = 28;
    private const int ErrnoQuota = 122;
}
