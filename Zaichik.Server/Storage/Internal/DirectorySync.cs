using System.Runtime.InteropServices;

namespace Zaichik.Server.Storage.Internal;

/// <summary>
/// Makes a directory's entries durable. A file's own synchronous writes do not make the directory entry that names
/// it durable: after a power cut a new file can be missing even though its data was written through. On Linux and
/// macOS the directory itself is opened and fsynced; on Windows, NTFS journals directory changes and .NET cannot
/// open a directory for flushing, so this does nothing there.
/// </summary>
internal static partial class DirectorySync
{
    private const int ReadOnly = 0;

    /// <exception cref="IOException">The directory could not be opened or flushed.</exception>
    public static void Flush(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var descriptor = Open(directory, ReadOnly);
        if (descriptor < 0)
        {
            throw new IOException($"could not open directory '{directory}' to flush it (errno {Marshal.GetLastPInvokeError()})");
        }

        try
        {
            if (Fsync(descriptor) != 0)
            {
                throw new IOException($"could not flush directory '{directory}' (errno {Marshal.GetLastPInvokeError()})");
            }

        }
        finally
        {
            _ = Close(descriptor);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int descriptor);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int descriptor);
}
