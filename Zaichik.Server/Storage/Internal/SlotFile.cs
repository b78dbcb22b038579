using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Zaichik.Server.Storage.Internal;

/// <summary>
/// A small record kept durable by overwriting one of two fixed slots in a file, in turn. A slot is
/// <c>[crc32c u32][generation i64][length i32][payload]</c>, little-endian, its checksum covering everything after it.
/// A write goes to the slot that does not hold the newest record this instance flushed (before any flush, the slot
/// that does not hold the newest valid record), so a write torn by a crash or a power cut leaves the last flushed
/// record intact, and a reader takes the newest slot whose checksum holds. Writes that are not flushed so take turns in
/// one slot, over each other, and whatever a power cut does to them the last flushed record survives. When every write
/// is flushed the slots simply alternate. Overwriting an allocated block in place also costs far less than creating a
/// file per record.
/// </summary>
internal sealed class SlotFile : IDisposable
{
    public const int HeaderSize = sizeof(uint) + sizeof(long) + sizeof(int);

    private readonly Lock _lock = new();
    private readonly SafeFileHandle _file;
    private readonly FileBudget _budget;
    private readonly byte[] _buffer;
    private readonly long[] _slotGeneration = [-1, -1];
    private int _flushedSlot = -1;
    private long _flushes;
    private bool _created;
    private bool _disposed;

    /// <exception cref="WrongFileKindException">The path is not a regular file.</exception>
    /// <exception cref="StorageExhaustedException">No descriptor is left in the budget.</exception>
    /// <param name="syncDirectory">
    /// Whether the first flushed write also flushes the folder, making a new file's name durable; false when the owner
    /// flushes the folder itself before relying on the file.
    /// </param>
    public SlotFile(string path, int slotSize, FileBudget budget, bool syncDirectory = true)
    {
        Path = path;
        SlotSize = slotSize;
        _budget = budget;
        _buffer = new byte[slotSize];
        FileKinds.RequireFileOrMissing(path);
        if (!budget.TryAcquire())
        {
            throw new StorageExhaustedException($"no file descriptor left for '{path}': the storage layer holds its limit of {budget.Limit} (Storage:MaxOpenFiles)");
        }

        try
        {
            Created = !File.Exists(path);
            _created = Created && syncDirectory;
            _file = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
        }
        catch (Exception exception)
        {
            budget.Release();
            if (StorageExhaustedException.IsExhaustion(exception))
            {
                throw new StorageExhaustedException($"the process has no file descriptor left to open '{path}'", exception);
            }

            throw;
        }

        try
        {
            var hasBytes = false;
            for (var slot = 0; slot < 2; slot++)
            {
                var state = ReadSlot(slot, out var generation, out _);
                _slotGeneration[slot] = state == SlotState.Valid ? generation : -1;
                hasBytes |= state != SlotState.Empty;
            }

            State = _slotGeneration[0] >= 0 || _slotGeneration[1] >= 0 ? SlotFileState.Valid
                : hasBytes ? SlotFileState.Damaged
                : SlotFileState.Empty;
            var length = RandomAccess.GetLength(_file);
            if (length < 2L * slotSize)
            {
                // Both slots allocated up front: later writes overwrite blocks and never change the file's size.
                RandomAccess.Write(_file, new byte[(2 * slotSize) - (int)length], length);
            }
        }
        catch
        {
            _file.Dispose();
            budget.Release();
            throw;
        }
    }

    public string Path { get; }

    /// <summary>True when opening created the file.</summary>
    public bool Created { get; }

    public int SlotSize { get; }

    /// <summary>What the file held when it was opened.</summary>
    public SlotFileState State { get; }

    /// <summary>How many writes this instance flushed to disk.</summary>
    public long Flushes => Interlocked.Read(ref _flushes);

    /// <summary>The newest generation held, or -1 when there is none.</summary>
    public long NewestGeneration
    {
        get
        {
            lock (_lock)
            {
                return Math.Max(_slotGeneration[0], _slotGeneration[1]);
            }
        }
    }

    /// <summary>The newest valid record's payload and generation, or null.</summary>
    public byte[]? ReadNewest(out long generation)
    {
        lock (_lock)
        {
            var slot = _slotGeneration[0] >= _slotGeneration[1] ? 0 : 1;
            generation = _slotGeneration[slot];
            if (generation < 0)
            {
                return null;
            }

            return ReadSlot(slot, out var held, out var payload) == SlotState.Valid && held == generation ? payload : null;
        }
    }

    /// <summary>The payload of the slot holding <paramref name="generation"/>, or null.</summary>
    public byte[]? Read(long generation)
    {
        lock (_lock)
        {
            for (var slot = 0; slot < 2; slot++)
            {
                if (_slotGeneration[slot] == generation && ReadSlot(slot, out var held, out var payload) == SlotState.Valid && held == generation)
                {
                    return payload;
                }
            }

            return null;
        }
    }

    /// <summary>The generations held, newest first.</summary>
    public long[] Generations()
    {
        lock (_lock)
        {
            return _slotGeneration.Where(generation => generation >= 0).OrderDescending().ToArray();
        }
    }

    /// <summary>
    /// Writes <paramref name="payload"/> as <paramref name="generation"/> over the slot not holding the newest record
    /// this instance flushed (over the older slot before the first flush); with <paramref name="flush"/> it is on disk
    /// (and so is the file's directory entry, the first time) when this returns.
    /// </summary>
    public void Write(long generation, ReadOnlySpan<byte> payload, bool flush)
    {
        if (payload.Length > SlotSize - HeaderSize)
        {
            throw new InvalidOperationException($"a record of {payload.Length} bytes does not fit a {SlotSize}-byte slot of '{Path}'");
        }

        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // The slot not holding the newest flushed record, or (none flushed by this instance) the older one.
            var slot = _flushedSlot >= 0 ? 1 - _flushedSlot : _slotGeneration[0] > _slotGeneration[1] ? 1 : 0;
            var span = _buffer.AsSpan();
            span.Clear();
            BinaryPrimitives.WriteInt64LittleEndian(span[sizeof(uint)..], generation);
            BinaryPrimitives.WriteInt32LittleEndian(span[(sizeof(uint) + sizeof(long))..], payload.Length);
            payload.CopyTo(span[HeaderSize..]);
            BinaryPrimitives.WriteUInt32LittleEndian(span, LogRecord.Checksum(span[sizeof(uint)..(HeaderSize + payload.Length)]));
            RandomAccess.Write(_file, span, (long)slot * SlotSize);
            if (flush)
            {
                DataSync.Flush(_file);
                if (_created)
                {
                    DirectorySync.Flush(System.IO.Path.GetDirectoryName(Path)!);
                    _created = false;
                }

                _flushedSlot = slot;
                Interlocked.Increment(ref _flushes);
            }

            _slotGeneration[slot] = generation;
        }
    }

    /// <summary>Forgets both records.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            RandomAccess.Write(_file, new byte[2 * SlotSize], 0);
            _slotGeneration[0] = _slotGeneration[1] = -1;
            _flushedSlot = -1;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (!_disposed)
            {
                _disposed = true;
                _file.Dispose();
                _budget.Release();
            }
        }
    }

    private SlotState ReadSlot(int slot, out long generation, out byte[] payload)
    {
        generation = -1;
        payload = [];
        var span = _buffer.AsSpan();
        span.Clear();
        var read = RandomAccess.Read(_file, span, (long)slot * SlotSize);
        if (!span[..read].ContainsAnyExcept((byte)0))
        {
            return SlotState.Empty;
        }

        var length = BinaryPrimitives.ReadInt32LittleEndian(span[(sizeof(uint) + sizeof(long))..]);
        if (length is < 0 or > int.MaxValue - HeaderSize || HeaderSize + length > SlotSize
            || BinaryPrimitives.ReadUInt32LittleEndian(span) != LogRecord.Checksum(span[sizeof(uint)..(HeaderSize + length)]))
        {
            return SlotState.Damaged;
        }

        generation = BinaryPrimitives.ReadInt64LittleEndian(span[sizeof(uint)..]);
        payload = span.Slice(HeaderSize, length).ToArray();
        return generation < 0 ? SlotState.Damaged : SlotState.Valid;
    }

    private enum SlotState
    {
        Empty,
        Valid,
        Damaged,
    }
}

/// <summary>What a <see cref="SlotFile"/> held when it was opened.</summary>
internal enum SlotFileState
{
    /// <summary>New, or nothing but zeros: nothing was ever recorded (or the file was zeroed).</summary>
    Empty,

    /// <summary>At least one slot holds a valid record.</summary>
    Valid,

    /// <summary>The file has content, but no slot's checksum holds.</summary>
    Damaged,
}
