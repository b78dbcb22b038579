using System.Runtime.InteropServices;
using System.Text;

namespace Zaichik.Server.Storage;

/// <summary>
/// Makes a broker the only one using its data folder: an exclusive <c>flock</c> on <c>broker.lock</c> in the folder,
/// held until the broker has closed every topic, with the holder's process id written in the file. Two brokers on one
/// folder would each append to the same logs at the same addresses and lose acknowledged messages; the second one
/// fails at start instead (<see cref="DataFolderInUseException"/>, exit code 3). The lock is the kernel's, so it is
/// released when the process dies, however it dies.
/// </summary>
internal sealed partial class DataFolderLock : IDisposable
{
    public const string FileName = "broker.lock";

    private const int ReadWrite = 0x2;
    private const int Create = 0x40;
    private const int CloseOnExec = 0x80000;
    private const int LockExclusive = 2;

    /// <summary>How long a lock last held by this very process is tried again (see <see cref="Acquire"/>).</summary>
    private const int SameProcessPatienceMs = 2_000;
    private const int LockNonBlocking = 4;
    private const int Permissions = 0x1A4; // 0644

    private readonly int _descriptor;
    private readonly FileStream? _windowsFile;
    private int _disposed;

    private DataFolderLock(int descriptor, FileStream? windowsFile)
    {
        _descriptor = descriptor;
        _windowsFile = windowsFile;
    }

    /// <summary>Locks <paramref name="dataPath"/> (creating it if needed) for this process.</summary>
    /// <exception cref="DataFolderInUseException">Another process holds it.</exception>
    /// <exception cref="IOException">The lock file cannot be created.</exception>
    public static DataFolderLock Acquire(string dataPath)
    {
        var folder = Path.GetFullPath(dataPath);
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, FileName);
        if (OperatingSystem.IsWindows())
        {
            try
            {
                var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
                file.SetLength(0);
                file.Write(Encoding.ASCII.GetBytes($"{Environment.ProcessId}\n"));
                file.Flush();
                return new DataFolderLock(-1, file);
            }
            catch (IOException)
            {
                throw new DataFolderInUseException(folder, ReadHolder(path));
            }
        }

        var descriptor = Open(path, ReadWrite | Create | CloseOnExec, Permissions);
        if (descriptor < 0)
        {
            throw new IOException($"cannot open the lock file '{path}' (errno {Marshal.GetLastPInvokeError()})");
        }

        // The last holder was this process: a broker of this process that just stopped, whose descriptor a child process
        // being started at that moment may still share between its fork and its exec (close-on-exec closes it there).
        // That lasts microseconds to milliseconds, so the lock is tried again for a moment before giving up.
        var deadline = Environment.TickCount64 + SameProcessPatienceMs;
        while (Flock(descriptor, LockExclusive | LockNonBlocking) != 0)
        {
            var holder = ReadPid(descriptor);
            if (holder == Environment.ProcessId && Environment.TickCount64 < deadline)
            {
                Thread.Sleep(10);
                continue;
            }

            _ = Close(descriptor);
            throw new DataFolderInUseException(folder, holder);
        }

        var pid = Encoding.ASCII.GetBytes($"{Environment.ProcessId}\n");
        _ = Ftruncate(descriptor, 0);
        _ = Pwrite(descriptor, pid, pid.Length, 0);
        return new DataFolderLock(descriptor, null);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_windowsFile is not null)
        {
            _windowsFile.Dispose();
        }
        else
        {
            // Closing the descriptor releases the lock; the file stays, holding the last holder's id.
            _ = Close(_descriptor);
        }
    }

    private static int? ReadPid(int descriptor)
    {
        var buffer = new byte[32];
        var read = Pread(descriptor, buffer, buffer.Length, 0);
        return read > 0 && int.TryParse(Encoding.ASCII.GetString(buffer, 0, (int)read).Trim(), out var pid) ? pid : null;
    }

    private static int? ReadHolder(string path)
    {
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(file);
            return int.TryParse(reader.ReadToEnd().Trim(), out var pid) ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(int descriptor, int operation);

    [LibraryImport("libc", EntryPoint = "ftruncate", SetLastError = true)]
    private static partial int Ftruncate(int descriptor, long length);

    [LibraryImport("libc", EntryPoint = "pwrite", SetLastError = true)]
    private static partial nint Pwrite(int descriptor, byte[] buffer, nint count, long offset);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    private static partial nint Pread(int descriptor, byte[] buffer, nint count, long offset);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int descriptor);
}

/// <summary>Another broker (process <see cref="HolderPid"/>, when known) is using the data folder.</summary>
public sealed class DataFolderInUseException(string folder, int? holderPid)
    : IOException($"the data folder {folder} is in use by another broker (process {(holderPid is { } pid ? pid.ToString() : "unknown")}); stop it or choose another folder with --data")
{
    public string Folder { get; } = folder;

    public int? HolderPid { get; } = holderPid;
}
