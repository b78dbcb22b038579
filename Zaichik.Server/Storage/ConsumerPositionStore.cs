using System.Buffers.Binary;
using Zaichik.Protocol;
using Zaichik.Server.Storage.Internal;

namespace Zaichik.Server.Storage;

/// <summary>
/// The committed sequences of a topic's durable consumers, one small file each under <c>consumers/</c> beside the
/// log: <c>&lt;name&gt;.position</c>, a <see cref="SlotFile"/> of two checksummed slots written in turn, so a write torn
/// by a crash leaves the one before it. A Commit only records the new sequence in memory; <see cref="Flush"/> writes
/// what changed, and the topic's committer calls it on every flush (fsynced on Always topics, with the log's own group
/// flush), so a Commit frame never waits for the disk on the connection's read loop.
/// </summary>
/// <remarks>
/// A position file that exists but cannot be read (no valid slot, all zeros, not a regular file) is never taken as
/// "never committed": the consumer is <see cref="PositionState.Lost"/> and refused until it names where to resume.
/// </remarks>
internal sealed class ConsumerPositionStore : IDisposable
{
    public const string FolderName = "consumers";

    private const string Extension = ".position";
    private const int SlotSize = 64;

    private readonly string _directory;
    private readonly FileBudget _budget;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly List<(long Version, TaskCompletionSource Done)> _waiters = [];

    /// <summary>Bumped by every Commit that moves a position: the version of the newest change.</summary>
    private long _version;

    /// <summary>Every change up to this version is written and fsynced.</summary>
    private long _durableVersion;

    public ConsumerPositionStore(string topicDirectory, FileBudget budget)
    {
        _directory = Path.Combine(topicDirectory, FolderName);
        _budget = budget;
        Groups = new GroupStateStore(topicDirectory);
        if (!Directory.Exists(_directory))
        {
            return;
        }

        foreach (var path in Directory.EnumerateFileSystemEntries(_directory, "*" + Extension))
        {
            var name = Path.GetFileNameWithoutExtension(path);
            if (ConsumerName.Validate(name) is null)
            {
                _entries[name] = Load(path);
            }
        }
    }

    /// <summary>The topic's consumer groups' stored state, written by the same <see cref="Flush"/>.</summary>
    public GroupStateStore Groups { get; }

    /// <summary>Records that a consumer group's state changed (see <see cref="GroupStateStore.Update"/>).</summary>
    /// <returns>The version to pass to <see cref="WhenDurableAsync"/>.</returns>
    public long GroupChanged()
    {
        lock (_lock)
        {
            return ++_version;
        }
    }

    /// <summary>Names of consumers whose stored position could not be read (reported by the topic when it opens).</summary>
    public IReadOnlyList<(string Name, string Reason)> Lost
    {
        get
        {
            lock (_lock)
            {
                return _entries.Where(entry => entry.Value.Reason is not null).Select(entry => (entry.Key, entry.Value.Reason!)).ToArray();
            }
        }
    }

    /// <summary>What is stored for <paramref name="name"/>.</summary>
    public PositionState Get(string name, out long sequence, out string? reason)
    {
        lock (_lock)
        {
            sequence = 0;
            reason = null;
            if (!_entries.TryGetValue(name, out var entry))
            {
                return PositionState.None;
            }

            if (entry.Reason is not null)
            {
                reason = entry.Reason;
                return PositionState.Lost;
            }

            sequence = entry.Sequence;
            return PositionState.Committed;
        }
    }

    /// <summary>The smallest committed sequence of any durable consumer; 0 while any position is lost (keep everything).</summary>
    public long? Lowest()
    {
        lock (_lock)
        {
            if (_entries.Count == 0)
            {
                return null;
            }

            return _entries.Values.Any(entry => entry.Reason is not null) ? 0 : _entries.Values.Min(entry => entry.Sequence);
        }
    }

    /// <summary>Every durable consumer with its committed sequence (lost ones as 0).</summary>
    public IReadOnlyList<(string Name, long Sequence, bool Lost)> All()
    {
        lock (_lock)
        {
            return _entries.Select(entry => (entry.Key, entry.Value.Sequence, entry.Value.Reason is not null)).ToArray();
        }
    }

    /// <summary>Records that <paramref name="name"/> committed up to <paramref name="sequence"/>; written by the next <see cref="Flush"/>.</summary>
    /// <returns>The version to pass to <see cref="WhenDurableAsync"/> to learn when the position is on disk (0: nothing to wait for).</returns>
    public long Commit(string name, long sequence)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(name, out var entry))
            {
                entry = new Entry();
                _entries[name] = entry;
            }

            if (entry.Reason is null && entry.Sequence >= sequence)
            {
                return entry.Dirty ? entry.Version : 0;
            }

            entry.Sequence = sequence;
            entry.Reason = null;
            entry.Dirty = true;
            entry.Version = ++_version;
            return entry.Version;
        }
    }

    /// <summary>
    /// Completes once every position change up to <paramref name="version"/> (from <see cref="Commit"/>) is written and
    /// fsynced by a <see cref="Flush"/> to disk. Throws <see cref="IOException"/> when that flush fails.
    /// </summary>
    public Task WhenDurableAsync(long version)
    {
        lock (_lock)
        {
            if (version <= _durableVersion)
            {
                return Task.CompletedTask;
            }

            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((version, done));
            return done.Task;
        }
    }

    /// <summary>
    /// Sets <paramref name="name"/>'s position to <paramref name="sequence"/> whatever it was (a consumer whose position was
    /// lost, resuming where it said), and writes it at once.
    /// </summary>
    public void Reset(string name, long sequence, bool flushToDisk)
    {
        lock (_lock)
        {
            if (_entries.TryGetValue(name, out var old))
            {
                old.File?.Dispose();
                old.File = null;
            }

            var path = PathOf(name);
            if (FileKinds.Of(path) is not (FileKind.File or FileKind.Missing))
            {
                throw new WrongFileKindException(path, FileKinds.Of(path));
            }

            File.Delete(path);
            _entries[name] = new Entry { Sequence = sequence, Dirty = true };
            WriteLocked(name, _entries[name], flushToDisk);
        }
    }

    /// <summary>True when some position changed since the last <see cref="Flush"/>.</summary>
    public bool IsDirty
    {
        get
        {
            lock (_lock)
            {
                return _entries.Values.Any(entry => entry.Dirty) || Groups.IsDirty;
            }
        }
    }

    /// <summary>Writes every changed position; with <paramref name="flushToDisk"/> each is fsynced, so it survives a power cut.</summary>
    public void Flush(bool flushToDisk)
    {
        lock (_lock)
        {
            try
            {
                foreach (var (name, entry) in _entries)
                {
                    if (entry.Dirty)
                    {
                        WriteLocked(name, entry, flushToDisk);
                    }
                }

                Groups.Flush(flushToDisk);
            }
            catch (Exception exception) when (flushToDisk && exception is IOException or UnauthorizedAccessException)
            {
                FailWaitersLocked(new IOException($"durable consumer positions could not be written: {exception.Message}", exception));
                throw;
            }

            if (flushToDisk)
            {
                MarkDurableLocked();
            }
        }
    }

    /// <summary>Closes the file of a consumer that left (after writing it if it changed); it reopens on its next commit.</summary>
    public void Release(string name, bool flushToDisk)
    {
        lock (_lock)
        {
            if (_entries.TryGetValue(name, out var entry))
            {
                if (entry.Dirty)
                {
                    WriteLocked(name, entry, flushToDisk);
                    if (flushToDisk && !_entries.Values.Any(other => other.Dirty))
                    {
                        MarkDurableLocked();
                    }
                }

                entry.File?.Dispose();
                entry.File = null;
            }
        }
    }

    /// <summary>Descriptors open now (one per consumer that committed since it connected).</summary>
    public int OpenFiles
    {
        get
        {
            lock (_lock)
            {
                return _entries.Values.Count(entry => entry.File is not null);
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            FailWaitersLocked(new IOException("the topic closed before the durable consumer positions were written"));
            foreach (var entry in _entries.Values)
            {
                entry.File?.Dispose();
                entry.File = null;
            }
        }
    }

    /// <summary>Every position is written and fsynced: every change so far is durable.</summary>
    private void MarkDurableLocked()
    {
        _durableVersion = _version;
        foreach (var (_, done) in _waiters)
        {
            done.TrySetResult();
        }

        _waiters.Clear();
    }

    private void FailWaitersLocked(IOException failure)
    {
        foreach (var (_, done) in _waiters)
        {
            done.TrySetException(failure);
        }

        _waiters.Clear();
    }

    private void WriteLocked(string name, Entry entry, bool flushToDisk)
    {
        if (entry.File is null)
        {
            if (!Directory.Exists(_directory))
            {
                Directory.CreateDirectory(_directory);
                if (flushToDisk)
                {
                    DirectorySync.Flush(Path.GetDirectoryName(_directory)!);
                }
            }

            entry.File = new SlotFile(PathOf(name), SlotSize, _budget);
            entry.Generation = Math.Max(entry.Generation, entry.File.NewestGeneration);
        }

        Span<byte> payload = stackalloc byte[sizeof(long)];
        BinaryPrimitives.WriteInt64LittleEndian(payload, entry.Sequence);
        entry.File.Write(++entry.Generation, payload, flushToDisk);
        entry.Dirty = false;
    }

    private string PathOf(string name) => Path.Combine(_directory, name + Extension);

    private Entry Load(string path)
    {
        try
        {
            using var file = new SlotFile(path, SlotSize, _budget);
            if (file.ReadNewest(out var generation) is { Length: sizeof(long) } payload && BinaryPrimitives.ReadInt64LittleEndian(payload) >= 0)
            {
                return new Entry { Sequence = BinaryPrimitives.ReadInt64LittleEndian(payload), Generation = generation };
            }

            return new Entry
            {
                Reason = file.State == SlotFileState.Empty ? $"'{path}' holds only zeros" : $"'{path}' holds no valid position (checksum mismatch)",
            };
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException && exception is not StorageExhaustedException)
        {
            return new Entry { Reason = $"'{path}' cannot be read: {exception.Message}" };
        }
    }

    private sealed class Entry
    {
        public long Sequence { get; set; }

        public long Generation { get; set; }

        public bool Dirty { get; set; }

        /// <summary>The store's version at this position's last change.</summary>
        public long Version { get; set; }

        /// <summary>Why the stored position cannot be used, or null.</summary>
        public string? Reason { get; set; }

        public SlotFile? File { get; set; }
    }
}

/// <summary>What a durable consumer has stored.</summary>
internal enum PositionState
{
    /// <summary>It never committed (or its file was removed): it starts where its Subscribe says.</summary>
    None,

    /// <summary>It committed up to a sequence and resumes after it.</summary>
    Committed,

    /// <summary>Its stored position exists but cannot be read: it is refused until it names where to resume.</summary>
    Lost,
}
