using Microsoft.Win32.SafeHandles;

namespace Zaichik.Server.Storage.Internal;

/// <summary>
/// The segment files of one topic's log (<c>log.0</c>, <c>log.1</c>, ...) and the only descriptors open on them: one
/// for the segment being written and at most <see cref="MaxReadHandles"/> for readers of older segments, each counted
/// in the shared <see cref="FileBudget"/>. A segment the log has moved past is closed at once and only remembered until
/// the next flush reopens it to fsync it. A topic thus holds a bounded number of descriptors whatever its writers and
/// readers do, and a reader that leaves releases what it used. Every path is checked to be a regular file before it is opened: a fifo or a directory where a segment should
/// be fails at once instead of blocking.
/// </summary>
/// <remarks>
/// <see cref="ReservedHandles"/> descriptors are taken from the budget when the log opens and kept until it closes, so
/// that writing never fails for want of a descriptor: FasterLog treats a failed page write as the end of the log, and a
/// topic would have to be reopened for what is only a busy moment. Readers borrow from the same reserve and give way to
/// writes.
/// </remarks>
internal sealed class SegmentFiles : IDisposable
{
    public const string Prefix = "log.";

    /// <summary>Read handles kept open for older segments; more readers than that reopen as they go.</summary>
    public const int MaxReadHandles = 2;

    /// <summary>Descriptors reserved for the log while it is open: the segment being written and the one before it.</summary>
    public const int ReservedHandles = 2;

    private readonly string _directory;
    private readonly FileBudget _budget;
    private readonly Lock _lock = new();
    private readonly List<int> _unsynced = [];
    private readonly List<OpenSegment> _reads = [];
    private OpenSegment? _write;
    private bool _directoryDirty;
    private bool _parentDirty;
    private bool _disposed;
    private int _reserveFree;
    private int _borrowed;

    /// <param name="newFolder">The topic's folder was just created: the first flush also flushes the folder holding it.</param>
    /// <exception cref="StorageExhaustedException">The budget has no room for the reserved descriptors.</exception>
    public SegmentFiles(string directory, FileBudget budget, bool newFolder = false)
    {
        _directory = directory;
        _budget = budget;
        _parentDirty = newFolder;
        for (var i = 0; i < ReservedHandles; i++)
        {
            if (!budget.TryAcquire())
            {
                budget.Release(i);
                throw Exhausted(directory);
            }
        }

        _reserveFree = ReservedHandles;
    }

    public string Directory => _directory;

    /// <summary>Descriptors open now (tests count them).</summary>
    public int OpenHandles
    {
        get
        {
            lock (_lock)
            {
                return (_write is null ? 0 : 1) + _reads.Count;
            }
        }
    }

    /// <summary>A file was created in the folder (the commit file): the next flush makes its name durable.</summary>
    public void FolderChanged()
    {
        lock (_lock)
        {
            _directoryDirty = true;
        }
    }

    public string PathOf(int segment) => Path.Combine(_directory, Prefix + segment);

    /// <summary>The segment numbers present in <paramref name="directory"/>, ascending.</summary>
    public static List<int> List(string directory)
    {
        var segments = new List<int>();
        if (!System.IO.Directory.Exists(directory))
        {
            return segments;
        }

        foreach (var path in System.IO.Directory.EnumerateFileSystemEntries(directory, Prefix + "*"))
        {
            var suffix = Path.GetFileName(path.AsSpan())[Prefix.Length..];
            if (int.TryParse(suffix, System.Globalization.NumberStyles.None, null, out var segment) && segment.ToString() == suffix.ToString())
            {
                segments.Add(segment);
            }
        }

        segments.Sort();
        return segments;
    }

    /// <summary>
    /// Reads up to <paramref name="destination"/>'s length from <paramref name="segment"/> at <paramref name="offset"/>.
    /// Returns the bytes read: fewer at the end of the file, -1 when the file does not exist.
    /// </summary>
    /// <exception cref="WrongFileKindException">The path is not a regular file.</exception>
    /// <exception cref="StorageExhaustedException">No descriptor is left in the budget.</exception>
    /// <exception cref="IOException">The read failed.</exception>
    public int Read(int segment, long offset, Span<byte> destination)
    {
        lock (_lock)
        {
            var handle = HandleForRead(segment);
            if (handle is null)
            {
                return -1;
            }

            var total = 0;
            while (total < destination.Length)
            {
                var read = RandomAccess.Read(handle, destination[total..], offset + total);
                if (read == 0)
                {
                    break;
                }

                total += read;
            }

            return total;
        }
    }

    /// <summary>Writes <paramref name="source"/> to <paramref name="segment"/> at <paramref name="offset"/>, creating the file if needed. Not durable until <see cref="Flush"/>.</summary>
    public void Write(int segment, long offset, ReadOnlySpan<byte> source)
    {
        lock (_lock)
        {
            RandomAccess.Write(HandleForWrite(segment), source, offset);
        }
    }

    /// <summary>
    /// Makes everything written so far durable: each written segment is fsynced (and, except the one still being
    /// written, closed), then the folder, when a segment file was created since the last flush. Fails when the topic's
    /// folder is gone (deleted under the broker): what is written to files nobody can find again is not durable.
    /// </summary>
    public void Flush()
    {
        if (FileKinds.Of(_directory) != FileKind.Directory)
        {
            throw new IOException($"the topic's folder '{_directory}' is gone; nothing more can be made durable in it");
        }

        // The fsyncs run outside the lock: page writes (and reads) of the same topic go on meanwhile.
        List<int> unsynced;
        OpenSegment? current = null;
        bool directory;
        bool parent;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            unsynced = [.. _unsynced];
            _unsynced.Clear();
            if (_write is { Dirty: true } write)
            {
                write.Dirty = false;
                write.Syncing = true;
                current = write;
            }

            directory = _directoryDirty;
            _directoryDirty = false;
            parent = _parentDirty;
            _parentDirty = false;
        }

        var synced = 0;
        try
        {
            foreach (var segment in unsynced)
            {
                SyncClosed(segment);
                synced++;
            }

            if (current is not null)
            {
                DataSync.Flush(current.Handle);
            }

            if (directory)
            {
                DirectorySync.Flush(_directory);
            }

            if (parent && Path.GetDirectoryName(_directory) is { } topics)
            {
                // Every new topic's first flush asks for this one folder: one fsync serves all that ask together.
                DirectorySync.FlushShared(topics);
            }
        }
        catch
        {
            lock (_lock)
            {
                // Not made durable: the next flush tries again.
                _directoryDirty |= directory;
                _parentDirty |= parent;
                _unsynced.InsertRange(0, unsynced.Skip(synced));
                if (current is not null)
                {
                    current.Dirty = true;
                    Synced(current);
                }
            }

            throw;
        }

        if (current is not null)
        {
            lock (_lock)
            {
                Synced(current);
            }
        }
    }

    /// <summary>Fsyncs a segment the log moved past, through a descriptor opened for that alone.</summary>
    private void SyncClosed(int segment)
    {
        var path = PathOf(segment);
        if (FileKinds.Of(path) != FileKind.File)
        {
            return;
        }

        SafeFileHandle handle;
        lock (_lock)
        {
            handle = Open(path, FileMode.Open, forWrite: true);
        }

        try
        {
            RandomAccess.FlushToDisk(handle);
        }
        finally
        {
            lock (_lock)
            {
                handle.Dispose();
                GiveDescriptor();
            }
        }
    }

    /// <summary>A flush is done with the segment being written: a close asked for meanwhile happens now.</summary>
    private void Synced(OpenSegment segment)
    {
        segment.Syncing = false;
        if (segment.CloseWhenSynced)
        {
            Close(segment);
        }
    }

    /// <summary>Cuts a segment file to <paramref name="length"/> bytes (recovery removing what follows the last valid record).</summary>
    public void Truncate(int segment, long length)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var path = PathOf(segment);
            FileKinds.RequireFileOrMissing(path);
            if (File.Exists(path) && new FileInfo(path).Length > length)
            {
                using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
                RandomAccess.SetLength(handle, length);
                RandomAccess.FlushToDisk(handle);
            }
        }
    }

    /// <summary>Fsyncs an existing segment file that this instance did not write (what recovery kept from a crash).</summary>
    public void Sync(int segment)
    {
        lock (_lock)
        {
            if (HandleForRead(segment) is { } handle)
            {
                RandomAccess.FlushToDisk(handle);
            }
        }
    }

    /// <summary>Removes a segment file; a missing one is not an error.</summary>
    public void Delete(int segment)
    {
        lock (_lock)
        {
            CloseAll(_reads, segment);
            _unsynced.Remove(segment);
            if (_write?.Segment == segment)
            {
                Close(_write);
                _write = null;
            }

            var path = PathOf(segment);
            if (FileKinds.Of(path) == FileKind.File)
            {
                File.Delete(path);
            }
        }
    }

    /// <summary>Removes every segment file wholly below <paramref name="address"/> (whose segments are <paramref name="segmentSizeBits"/> wide).</summary>
    public void DeleteBelow(long address, int segmentSizeBits)
    {
        var first = (int)(address >> segmentSizeBits);
        foreach (var segment in List(Directory).Where(segment => segment < first))
        {
            Delete(segment);
        }
    }

    /// <summary>The length of a segment file, or -1 when it does not exist.</summary>
    public long Length(int segment)
    {
        var info = new FileInfo(PathOf(segment));
        return info.Exists ? info.Length : -1;
    }

    /// <summary>Closes the handles kept for readers; the next read reopens what it needs.</summary>
    public void ReleaseReadHandles()
    {
        lock (_lock)
        {
            CloseAll(_reads);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            CloseAll(_reads);
            if (_write is not null)
            {
                Close(_write);
                _write = null;
            }

            _disposed = true;
            _budget.Release(_reserveFree);
            _reserveFree = 0;
        }
    }

    private SafeFileHandle? HandleForRead(int segment)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_write?.Segment == segment)
        {
            return _write.Handle;
        }

        for (var i = 0; i < _reads.Count; i++)
        {
            var open = _reads[i];
            if (open.Segment == segment)
            {
                // Most recently used last: the first one is closed when room is needed.
                _reads.RemoveAt(i);
                _reads.Add(open);
                return open.Handle;
            }
        }

        var path = PathOf(segment);
        FileKinds.RequireFileOrMissing(path);
        if (!File.Exists(path))
        {
            return null;
        }

        if (_reads.Count >= MaxReadHandles)
        {
            Close(_reads[0]);
            _reads.RemoveAt(0);
        }

        var handle = Open(path, FileMode.Open, forWrite: false);
        _reads.Add(new OpenSegment(segment, handle));
        return handle;
    }

    private SafeFileHandle HandleForWrite(int segment)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_write?.Segment == segment)
        {
            _write.Dirty = true;
            return _write.Handle;
        }

        // The segment being written changes: the previous one is closed, and fsynced by the next flush if it needs it.
        if (_write is not null)
        {
            if (_write.Dirty && !_unsynced.Contains(_write.Segment))
            {
                _unsynced.Add(_write.Segment);
            }

            Close(_write);
            _write = null;
        }

        CloseAll(_reads, segment);
        var path = PathOf(segment);
        FileKinds.RequireFileOrMissing(path);
        var created = !File.Exists(path);
        var handle = Open(path, FileMode.OpenOrCreate, forWrite: true);
        _directoryDirty |= created;
        _write = new OpenSegment(segment, handle) { Dirty = true };
        return handle;
    }

    /// <summary>
    /// Opens a file with a descriptor from the reserve or, failing that, from the shared budget; readers' handles give
    /// way first. The reserve holds one descriptor for the segment being written and one for a flush or a reader.
    /// </summary>
    private SafeFileHandle Open(string path, FileMode mode, bool forWrite)
    {
        if (!TakeDescriptor())
        {
            CloseAll(_reads);
            if (!TakeDescriptor())
            {
                throw Exhausted(path);
            }
        }

        try
        {
            return File.OpenHandle(path, mode, FileAccess.ReadWrite, FileShare.ReadWrite);
        }
        catch (Exception exception)
        {
            GiveDescriptor();
            if (StorageExhaustedException.IsExhaustion(exception))
            {
                throw new StorageExhaustedException($"the process has no file descriptor left to open '{path}'", exception);
            }

            throw;
        }
    }

    private bool TakeDescriptor()
    {
        if (_reserveFree > 0)
        {
            _reserveFree--;
            return true;
        }

        if (_budget.TryAcquire())
        {
            _borrowed++;
            return true;
        }

        return false;
    }

    private void GiveDescriptor()
    {
        if (_borrowed > 0)
        {
            _borrowed--;
            _budget.Release();
        }
        else
        {
            _reserveFree++;
        }
    }

    private void Close(OpenSegment open)
    {
        if (open.Syncing)
        {
            // A flush is fsyncing it outside the lock: it closes it when it is done.
            open.CloseWhenSynced = true;
            return;
        }

        open.Handle.Dispose();
        GiveDescriptor();
    }

    private void CloseAll(List<OpenSegment> handles, int? segment = null)
    {
        for (var i = handles.Count - 1; i >= 0; i--)
        {
            if (segment is null || handles[i].Segment == segment)
            {
                Close(handles[i]);
                handles.RemoveAt(i);
            }
        }
    }

    private StorageExhaustedException Exhausted(string path) =>
        new($"no file descriptor left for '{path}': the storage layer holds its limit of {_budget.Limit} (Storage:MaxOpenFiles)");

    private sealed class OpenSegment(int segment, SafeFileHandle handle)
    {
        public int Segment { get; } = segment;

        public SafeFileHandle Handle { get; } = handle;

        /// <summary>Written since it was last flushed.</summary>
        public bool Dirty { get; set; }

        /// <summary>A flush is fsyncing it (outside the lock).</summary>
        public bool Syncing { get; set; }

        /// <summary>Closed while a flush was fsyncing it: the flush closes it.</summary>
        public bool CloseWhenSynced { get; set; }
    }
}
