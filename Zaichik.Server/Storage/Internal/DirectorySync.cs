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

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, GroupFlush> Groups = new(StringComparer.Ordinal);

    /// <summary>
    /// Flushes a directory many callers flush at once (the folder holding every topic's folder): a caller waits for a
    /// flush that started after it asked, and one flush serves everyone who asked while the one before it ran.
    /// </summary>
    /// <exception cref="IOException">The directory could not be opened or flushed.</exception>
    public static void FlushShared(string directory) => Groups.GetOrAdd(directory, static _ => new GroupFlush()).Flush(directory);

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

    /// <summary>One directory's group flushes: tickets are numbered, and a flush covers every ticket issued before it began.</summary>
    private sealed class GroupFlush
    {
        private readonly object _gate = new();
        private long _requested;
        private long _completed;
        private bool _running;

        public void Flush(string directory)
        {
            long ticket;
            lock (_gate)
            {
                ticket = ++_requested;
            }

            while (true)
            {
                long covers;
                lock (_gate)
                {
                    while (_running && _completed < ticket)
                    {
                        Monitor.Wait(_gate);
                    }

                    if (_completed >= ticket)
                    {
                        return;
                    }

                    _running = true;
                    covers = _requested;
                }

                var succeeded = false;
                try
                {
                    DirectorySync.Flush(directory);
                    succeeded = true;
                }
                finally
                {
                    lock (_gate)
                    {
                        _running = false;
                        if (succeeded)
                        {
                            _completed = Math.Max(_completed, covers);
                        }

                        Monitor.PulseAll(_gate);
                    }
                }

                // A flush that failed made nothing durable: its own caller gets the failure, the others try theirs.
            }
        }
    }
}
