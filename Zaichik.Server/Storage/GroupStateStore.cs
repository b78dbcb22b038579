using System.Buffers.Binary;
using System.Text;
using Zaichik.Protocol;
using Zaichik.Server.Storage.Internal;

namespace Zaichik.Server.Storage;

/// <summary>
/// What a topic's consumer groups need to survive a restart, one file each under <c>groups/</c> beside the log:
/// <c>&lt;name&gt;.group</c> holds the group's settings, the last sequence it read, and every message it delivered that is
/// not done yet with its delivery count. A file is replaced whole (written beside, fsynced on Always topics, renamed), so a
/// crash leaves the old one or the new one. Like the durable consumers' positions, a change is recorded in memory and
/// written by the topic's next flush (<see cref="ConsumerPositionStore.Flush"/> writes both).
/// </summary>
/// <remarks>
/// Layout: <c>"ZKG1" [ackWaitMs u32][maxDeliver u32][deadLetterTopic: len u16 (0xFFFF = none), UTF-8][readUpTo i64]
/// [count u32][sequence i64, deliveries u32]* [crc32c u32]</c>, little-endian. A file that cannot be read is never taken as
/// "new group": the group is <see cref="PositionState.Lost"/> and refused until it names where to resume.
/// </remarks>
internal sealed class GroupStateStore
{
    public const string FolderName = "groups";

    private const string Extension = ".group";
    private const ushort NoTopic = ushort.MaxValue;
    private static ReadOnlySpan<byte> Magic => "ZKG1"u8;

    private readonly string _directory;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    public GroupStateStore(string topicDirectory)
    {
        _directory = Path.Combine(topicDirectory, FolderName);
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

    /// <summary>Groups whose stored state could not be read (reported by the topic when it opens).</summary>
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

    /// <summary>Every stored group's name.</summary>
    public IReadOnlyList<string> Names
    {
        get
        {
            lock (_lock)
            {
                return _entries.Keys.ToArray();
            }
        }
    }

    /// <summary>What is stored for <paramref name="name"/>: nothing, a state, or a file that cannot be read.</summary>
    public PositionState Get(string name, out GroupSnapshot? state, out string? reason)
    {
        lock (_lock)
        {
            state = null;
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

            state = entry.State;
            return PositionState.Committed;
        }
    }

    /// <summary>The lowest sequence any group still needs (the first not done), or null when no group is stored; 1 while one is lost.</summary>
    public long? LowestNeeded()
    {
        lock (_lock)
        {
            long? lowest = null;
            foreach (var entry in _entries.Values)
            {
                var needed = entry.Reason is not null || entry.State is null ? 1 : entry.State.FirstNeeded;
                lowest = lowest is null ? needed : Math.Min(lowest.Value, needed);
            }

            return lowest;
        }
    }

    /// <summary>Records the group's state; written by the next <see cref="Flush"/>.</summary>
    public void Update(string name, GroupSnapshot state) => Update(name, state, null);

    /// <summary>Records that a live group's state changed: <paramref name="provider"/> is asked for it by the next <see cref="Flush"/>.</summary>
    public void Update(string name, Func<GroupSnapshot> provider) => Update(name, null, provider);

    private void Update(string name, GroupSnapshot? state, Func<GroupSnapshot>? provider)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(name, out var entry))
            {
                entry = new Entry();
                _entries[name] = entry;
            }

            if (state is not null)
            {
                entry.State = state;
            }

            entry.Provider = provider;
            entry.Reason = null;
            entry.Dirty = true;
        }
    }

    public bool IsDirty
    {
        get
        {
            lock (_lock)
            {
                return _entries.Values.Any(entry => entry.Dirty);
            }
        }
    }

    /// <summary>Writes every changed group's file; with <paramref name="flushToDisk"/> each is fsynced before it replaces the old one.</summary>
    public void Flush(bool flushToDisk)
    {
        lock (_lock)
        {
            var created = false;
            foreach (var (name, entry) in _entries)
            {
                if (!entry.Dirty)
                {
                    continue;
                }

                if (entry.Provider is { } provider)
                {
                    entry.State = provider();
                }

                if (entry.State is null)
                {
                    continue;
                }

                if (!created && !Directory.Exists(_directory))
                {
                    Directory.CreateDirectory(_directory);
                    if (flushToDisk)
                    {
                        DirectorySync.Flush(Path.GetDirectoryName(_directory)!);
                    }
                }

                created = true;
                Write(PathOf(name), entry.State, flushToDisk);
                entry.Dirty = false;
            }

            if (created && flushToDisk)
            {
                DirectorySync.Flush(_directory);
            }
        }
    }

    private string PathOf(string name) => Path.Combine(_directory, name + Extension);

    internal static byte[] Serialize(GroupSnapshot state)
    {
        var topic = state.DeadLetterTopic is null ? [] : Encoding.UTF8.GetBytes(state.DeadLetterTopic);
        var size = Magic.Length + 4 + 4 + 2 + topic.Length + 8 + 4 + state.Outstanding.Count * 12 + 4;
        var bytes = new byte[size];
        var span = bytes.AsSpan();
        Magic.CopyTo(span);
        var at = Magic.Length;
        BinaryPrimitives.WriteUInt32LittleEndian(span[at..], state.AckWaitMs);
        BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 4)..], state.MaxDeliver);
        BinaryPrimitives.WriteUInt16LittleEndian(span[(at + 8)..], state.DeadLetterTopic is null ? NoTopic : (ushort)topic.Length);
        at += 10;
        topic.CopyTo(span[at..]);
        at += topic.Length;
        BinaryPrimitives.WriteInt64LittleEndian(span[at..], state.ReadUpTo);
        BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 8)..], (uint)state.Outstanding.Count);
        at += 12;
        foreach (var (sequence, deliveries) in state.Outstanding)
        {
            BinaryPrimitives.WriteInt64LittleEndian(span[at..], sequence);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 8)..], deliveries);
            at += 12;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(span[at..], LogRecord.Checksum(span[..at]));
        return bytes;
    }

    /// <summary>The state in <paramref name="bytes"/>, or null with the reason when they are not a whole, valid file.</summary>
    internal static GroupSnapshot? Deserialize(ReadOnlySpan<byte> bytes, out string? problem)
    {
        problem = null;
        if (bytes.Length < Magic.Length + 4 + 4 + 2 + 8 + 4 + 4 || !bytes[..Magic.Length].SequenceEqual(Magic))
        {
            problem = "it is not a group state file (too short or wrong magic)";
            return null;
        }

        var body = bytes[..^4];
        if (LogRecord.Checksum(body) != BinaryPrimitives.ReadUInt32LittleEndian(bytes[^4..]))
        {
            problem = "checksum mismatch";
            return null;
        }

        var at = Magic.Length;
        var ackWaitMs = BinaryPrimitives.ReadUInt32LittleEndian(body[at..]);
        var maxDeliver = BinaryPrimitives.ReadUInt32LittleEndian(body[(at + 4)..]);
        var topicLength = BinaryPrimitives.ReadUInt16LittleEndian(body[(at + 8)..]);
        at += 10;
        string? topic = null;
        if (topicLength != NoTopic)
        {
            if (body.Length < at + topicLength + 12)
            {
                problem = "truncated";
                return null;
            }

            topic = Encoding.UTF8.GetString(body.Slice(at, topicLength));
            at += topicLength;
        }

        if (body.Length < at + 12)
        {
            problem = "truncated";
            return null;
        }

        var readUpTo = BinaryPrimitives.ReadInt64LittleEndian(body[at..]);
        var count = BinaryPrimitives.ReadUInt32LittleEndian(body[(at + 8)..]);
        at += 12;
        if (readUpTo < 0 || (long)count * 12 != body.Length - at)
        {
            problem = "its counts do not match its length";
            return null;
        }

        var outstanding = new List<(long, uint)>((int)count);
        for (var i = 0; i < count; i++, at += 12)
        {
            outstanding.Add((BinaryPrimitives.ReadInt64LittleEndian(body[at..]), BinaryPrimitives.ReadUInt32LittleEndian(body[(at + 8)..])));
        }

        return new GroupSnapshot(ackWaitMs, maxDeliver, topic, readUpTo, outstanding);
    }

    private static void Write(string path, GroupSnapshot state, bool flushToDisk)
    {
        var bytes = Serialize(state);
        var temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.None))
        {
            stream.Write(bytes);
            stream.Flush(flushToDisk);
        }

        File.Move(temporary, path, overwrite: true);
    }

    private static Entry Load(string path)
    {
        try
        {
            if (FileKinds.Of(path) is not FileKind.File)
            {
                return new Entry { Reason = $"'{path}' is not a regular file" };
            }

            var state = Deserialize(File.ReadAllBytes(path), out var problem);
            return state is null ? new Entry { Reason = $"'{path}' holds no valid group state ({problem})" } : new Entry { State = state };
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return new Entry { Reason = $"'{path}' cannot be read: {exception.Message}" };
        }
    }

    private sealed class Entry
    {
        /// <summary>The state last loaded, written or fixed.</summary>
        public GroupSnapshot? State { get; set; }

        /// <summary>Set while the group is live: asked for its state at each flush.</summary>
        public Func<GroupSnapshot>? Provider { get; set; }

        public bool Dirty { get; set; }

        public string? Reason { get; set; }
    }
}

/// <summary>
/// A consumer group's stored state: its settings, the last sequence it read from the log, and every message it delivered
/// that is neither committed nor dead-lettered, with how often it was delivered. Everything up to <see cref="ReadUpTo"/>
/// that is not outstanding is done.
/// </summary>
internal sealed record GroupSnapshot(uint AckWaitMs, uint MaxDeliver, string? DeadLetterTopic, long ReadUpTo, IReadOnlyList<(long Sequence, uint Deliveries)> Outstanding)
{
    /// <summary>The first sequence the group still needs.</summary>
    public long FirstNeeded => Outstanding.Count == 0 ? ReadUpTo + 1 : Math.Min(ReadUpTo + 1, Outstanding.Min(entry => entry.Sequence));
}
