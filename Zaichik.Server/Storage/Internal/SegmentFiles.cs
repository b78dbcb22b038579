using Microsoft.Win32.SafeHandles;

namespace Zaichik.Server.Storage.Internal;

/// <summary>
/// The segment files of one topic's log (<c>log.0</c>, <c>log.1</c>, ...) and the only descriptors open on them. It
/// keeps one handle for the segment being written, the handles of segments written but not yet flushed, and at most
/// <see cref="MaxReadHandles"/> more for readers of older segments, every one of them counted in the shared
/// <see cref="FileBudget"/>. So a topic holds a bounded number of descriptors whatever its readers do, and a reader
/// that leaves releases what it used. Every path is checked to be a regular file before it is opened: a fifo or a
/// directory where a segment should be fails at once instead of blocking.
/// </summary>
internal sealed class SegmentFiles : IDisposable
{
    public const string Prefix = "log.";

    /// <summary>Read handles kept open for older segments; more readers than that reopen as they go.</summary>
    public const int MaxReadHandles = 2;

    private readonly string _directory;
    private readonly FileBudget _budget;
    private readonly Lock _lock = new();
    private readonly List<OpenSegment> _written = [];
    private readonly List<OpenSegment> _reads = [];
    private OpenSegment? _write;
    private bool _directoryDirty;
    private bool _disposed;

    public SegmentFiles(string directory, FileBudget budget)
    {
        _directory = directory;
        _budget = budget;
    }

    public string Directory => _directory;

    /// <summary>Descriptors open now (tests count them).</summary>
    public int OpenHandles
    {
        get
        {
            lock (_lock)
            {
                return (_write is null ? 0 : 1) + _written.Count + _reads.Count;
            }
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
    /// written, closed), then the folder, when a segment file was created since the last flush.
    /// </summary>
    public void Flush()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            foreach (var written in _written)
            {
                RandomAccess.FlushToDisk(written.Handle);
            }

            CloseAll(_written);
            if (_write is { Dirty: true } write)
            {
                RandomAccess.FlushToDisk(write.Handle);
                write.Dirty = false;
            }

            if (_directoryDirty)
            {
                DirectorySync.Flush(_directory);
                _directoryDirty = false;
                DirectoryFlushes++;
            }
        }
    }

    /// <summary>Directory flushes made because a segment file was created (tests count them).</summary>
    public int DirectoryFlushes { get; private set; }

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
            Close(_reads, segment);
            Close(_written, segment);
            if (_write?.Segment == segment)
            {
                _write.Handle.Dispose();
                _budget.Release();
                _write = null;
            }

            var path = PathOf(segment);
            if (FileKinds.Of(path) == FileKind.File)
            {
                File.Delete(path);
            }
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

            _disposed = true;
            CloseAll(_reads);
            CloseAll(_written);
            if (_write is not null)
            {
                _write.Handle.Dispose();
                _budget.Release();
                _write = null;
            }
        }
    }

    private SafeFileHandle? HandleForRead(int segment)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_write?.Segment == segment)
        {
            return _write.Handle;
        }

        foreach (var written in _written)
        {
            if (written.Segment == segment)
            {
                return written.Handle;
            }
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
            _reads[0].Handle.Dispose();
            _budget.Release();
            _reads.RemoveAt(0);
        }

        var handle = Open(path, FileMode.Open);
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

        foreach (var written in _written)
        {
            if (written.Segment == segment)
            {
                return written.Handle;
            }
        }

        // The segment being written changes: the previous one keeps its handle until the next flush makes it durable.
        if (_write is not null)
        {
            if (_write.Dirty)
            {
                _written.Add(_write);
            }
            else
            {
                _write.Handle.Dispose();
                _budget.Release();
            }

            _write = null;
        }

        Close(_reads, segment);
        var path = PathOf(segment);
        FileKinds.RequireFileOrMissing(path);
        var created = !File.Exists(path);
        var handle = Open(path, FileMode.OpenOrCreate);
        _directoryDirty |= created;
        _write = new OpenSegment(segment, handle) { Dirty = true };
        return handle;
    }

    private SafeFileHandle Open(string path, FileMode mode)
    {
        if (!_budget.TryAcquire())
        {
            // Readers' handles are the first to go: they reopen when they need them again.
            CloseAll(_reads);
            if (!_budget.TryAcquire())
            {
                throw new StorageExhaustedException($"no file descriptor left for '{path}': the storage layer holds its limit of {_budget.Limit} (Storage:MaxOpenFiles)");
            }
        }

        try
        {
            return File.OpenHandle(path, mode, FileAccess.ReadWrite, FileShare.ReadWrite);
        }
        catch (Exception exception)
        {
            _budget.Release();
            if (StorageExhaustedException.IsExhaustion(exception))
            {
                throw new StorageExhaustedException($"the process has no file descriptor left to open '{path}'", exception);
            }

            throw;
        }
    }

    private void Close(List<OpenSegment> handles, int segment)
    {
        for (var i = handles.Count - 1; i >= 0; i--)
        {
            if (handles[i].Segment == segment)
            {
                handles[i].Handle.Dispose();
                _budget.Release();
                handles.RemoveAt(i);
            }
        }
    }

    private void CloseAll(List<OpenSegment> handles)
    {
        foreach (var open in handles)
        {
            open.Handle.Dispose();
            _budget.Release();
        }

        handles.Clear();
    }

    private sealed class OpenSegment(int segment, SafeFileHandle handle)
    {
        public int Segment { get; } = segment;

        public SafeFileHandle Handle { get; } = handle;

        /// <summary>Written since it was last flushed.</summary>
        public bool Dirty { get; set; }
    }
}
