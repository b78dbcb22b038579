using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Zaichik.Server.Storage;

/// <summary>
/// Every topic of the broker and its settings, in one append-only file, <c>catalog</c> in the data folder:
/// <c>[crc32c u32][length u16][name length u8][name][retention i64][window i64][durability u8][commit interval i64]</c>
/// per topic, then, for a topic with limits or that keeps the latest value per key, <c>[max messages i64][max bytes i64]</c>,
/// then, for the latter, <c>[keep latest per key u8][tombstone retention i64]</c>; the checksum covers what follows it. A restart reads this one file instead of one per topic, so a
/// broker with 100,000 topics listens within seconds and opens each topic only when it is used. Creating a topic
/// appends a record and waits for it to be fsynced; creations that arrive meanwhile share the next fsync, so thousands
/// of topics per second cost a few fsyncs. A record torn by a crash ends the file; anything after it is recovered from
/// the topic folders, whose <c>topic.json</c> hold the same settings.
/// </summary>
internal sealed class TopicCatalog : IDisposable
{
    public const string FileName = "catalog";

    private const int HeaderSize = sizeof(uint) + sizeof(ushort);

    private readonly string _path;
    private readonly Lock _lock = new();
    private readonly SafeFileHandle _file;
    private long _length;
    private List<(byte[] Record, TaskCompletionSource Done)> _pending = [];
    private bool _flushing;
    private bool _disposed;

    private TopicCatalog(string path, SafeFileHandle file, long length)
    {
        _path = path;
        _file = file;
        _length = length;
    }

    /// <summary>
    /// Opens the catalog in <paramref name="dataPath"/> and returns its entries with a note of what had to be recovered.
    /// A damaged or missing catalog is rebuilt from what it still holds and from <paramref name="fromFolders"/>.
    /// </summary>
    /// <param name="fromFolders">
    /// Topics described by their folders' <c>topic.json</c>, for the folders whose names are not in the set it is given
    /// (the topics the catalog holds): only those folders' files are read.
    /// </param>
    public static TopicCatalog Open(string dataPath, Func<IReadOnlySet<string>, IEnumerable<CatalogEntry>> fromFolders, out List<CatalogEntry> entries, out string? recovered)
    {
        var path = Path.Combine(dataPath, FileName);
        Internal.FileKinds.RequireFileOrMissing(path);
        var existed = File.Exists(path);
        var bytes = existed ? File.ReadAllBytes(path) : [];
        entries = Parse(bytes, out var validLength);
        var damaged = bytes.AsSpan(validLength).ContainsAnyExcept((byte)0);

        var known = new HashSet<string>(entries.Select(entry => entry.Name), StringComparer.Ordinal);
        var added = new List<CatalogEntry>();
        foreach (var entry in fromFolders(known))
        {
            if (known.Add(entry.Name))
            {
                added.Add(entry);
            }
        }

        entries.AddRange(added);
        recovered = damaged ? $"the catalog is damaged after byte {validLength}: {entries.Count - added.Count} topics read from it, {added.Count} recovered from their folders"
            : !existed && added.Count > 0 ? $"there was no catalog: {added.Count} topics recovered from their folders"
            : added.Count > 0 ? $"{added.Count} topics were missing from the catalog and were recovered from their folders"
            : null;

        if (damaged || added.Count > 0 || !existed)
        {
            Rewrite(path, entries);
            validLength = (int)new FileInfo(path).Length;
        }

        var file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        if (RandomAccess.GetLength(file) != validLength)
        {
            RandomAccess.SetLength(file, validLength);
        }

        return new TopicCatalog(path, file, validLength);
    }

    /// <summary>Records a new topic; completes once the record is on disk.</summary>
    /// <exception cref="IOException">The catalog could not be written.</exception>
    public Task AddAsync(CatalogEntry entry)
    {
        var record = Encode(entry);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _pending.Add((record, done));
            if (!_flushing)
            {
                _flushing = true;
                _ = Task.Run(FlushLoop);
            }
        }

        return done.Task;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _file.Dispose();
        }
    }

    private void FlushLoop()
    {
        while (true)
        {
            List<(byte[] Record, TaskCompletionSource Done)> batch;
            lock (_lock)
            {
                if (_pending.Count == 0 || _disposed)
                {
                    _flushing = false;
                    foreach (var (_, done) in _pending)
                    {
                        done.TrySetException(new ObjectDisposedException(nameof(TopicCatalog)));
                    }

                    _pending.Clear();
                    return;
                }

                batch = _pending;
                _pending = [];
            }

            try
            {
                var buffer = new byte[batch.Sum(item => item.Record.Length)];
                var at = 0;
                foreach (var (record, _) in batch)
                {
                    record.CopyTo(buffer, at);
                    at += record.Length;
                }

                lock (_lock)
                {
                    ObjectDisposedException.ThrowIf(_disposed, this);
                    if (!File.Exists(_path))
                    {
                        throw new IOException($"the catalog '{_path}' is gone (the data folder was removed under the broker)");
                    }

                    RandomAccess.Write(_file, buffer, _length);
                    RandomAccess.FlushToDisk(_file);
                    _length += buffer.Length;
                }

                foreach (var (_, done) in batch)
                {
                    done.TrySetResult();
                }
            }
            catch (Exception exception)
            {
                // The next record goes where this batch should have: a half-written batch is overwritten, never read.
                var failure = exception as IOException ?? new IOException($"the catalog '{_path}' could not be written: {exception.Message}", exception);
                foreach (var (_, done) in batch)
                {
                    done.TrySetException(failure);
                }
            }
        }
    }

    private static void Rewrite(string path, List<CatalogEntry> entries)
    {
        var temporary = path + ".tmp";
        using (var file = File.Create(temporary))
        {
            foreach (var entry in entries)
            {
                file.Write(Encode(entry));
            }

            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
        Internal.DirectorySync.Flush(Path.GetDirectoryName(path)!);
    }

    private static List<CatalogEntry> Parse(byte[] bytes, out int validLength)
    {
        var entries = new List<CatalogEntry>();
        var at = 0;
        while (at + HeaderSize <= bytes.Length)
        {
            var length = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(at + sizeof(uint)));
            if (length == 0 || at + HeaderSize + length > bytes.Length
                || BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at)) != LogRecord.Checksum(bytes.AsSpan(at + sizeof(uint), sizeof(ushort) + length))
                || Decode(bytes.AsSpan(at + HeaderSize, length)) is not { } entry)
            {
                break;
            }

            entries.Add(entry);
            at += HeaderSize + length;
        }

        validLength = at;
        return entries;
    }

    private static byte[] Encode(CatalogEntry entry)
    {
        var name = Encoding.UTF8.GetBytes(entry.Name);
        var latest = entry.KeepLatestPerKey;
        var limits = entry.MaxMessages > 0 || entry.MaxBytes > 0 || latest;
        var length = 1 + name.Length + sizeof(long) + sizeof(long) + 1 + sizeof(long) + (limits ? 2 * sizeof(long) : 0) + (latest ? 1 + sizeof(long) : 0);
        var record = new byte[HeaderSize + length];
        var body = record.AsSpan(HeaderSize);
        body[0] = (byte)name.Length;
        name.CopyTo(body[1..]);
        var at = 1 + name.Length;
        BinaryPrimitives.WriteInt64LittleEndian(body[at..], entry.RetentionTtlMs);
        BinaryPrimitives.WriteInt64LittleEndian(body[(at + 8)..], entry.CompactionWindowMs);
        body[at + 16] = entry.Durability;
        BinaryPrimitives.WriteInt64LittleEndian(body[(at + 17)..], entry.CommitIntervalMs);
        if (limits)
        {
            // Only topics with limits carry them, so a catalog without any stays readable by a broker from before them.
            BinaryPrimitives.WriteInt64LittleEndian(body[(at + 25)..], entry.MaxMessages);
            BinaryPrimitives.WriteInt64LittleEndian(body[(at + 33)..], entry.MaxBytes);
        }

        if (latest)
        {
            // Likewise only topics that keep the latest value per key carry that flag and their tombstone retention.
            body[at + 41] = 1;
            BinaryPrimitives.WriteInt64LittleEndian(body[(at + 42)..], entry.TombstoneRetentionMs);
        }
        BinaryPrimitives.WriteUInt16LittleEndian(record.AsSpan(sizeof(uint)), (ushort)length);
        BinaryPrimitives.WriteUInt32LittleEndian(record, LogRecord.Checksum(record.AsSpan(sizeof(uint))));
        return record;
    }

    private static CatalogEntry? Decode(ReadOnlySpan<byte> body)
    {
        var nameLength = body[0];
        var latest = body.Length == 1 + nameLength + 50;
        var limits = body.Length == 1 + nameLength + 41 || latest;
        if (body.Length != 1 + nameLength + 25 && !limits)
        {
            return null;
        }

        var name = Encoding.UTF8.GetString(body.Slice(1, nameLength));
        var at = 1 + nameLength;
        return new CatalogEntry(
            name,
            BinaryPrimitives.ReadInt64LittleEndian(body[at..]),
            BinaryPrimitives.ReadInt64LittleEndian(body[(at + 8)..]),
            body[at + 16],
            BinaryPrimitives.ReadInt64LittleEndian(body[(at + 17)..]),
            limits ? BinaryPrimitives.ReadInt64LittleEndian(body[(at + 25)..]) : 0,
            limits ? BinaryPrimitives.ReadInt64LittleEndian(body[(at + 33)..]) : 0,
            latest && body[at + 41] != 0,
            latest ? BinaryPrimitives.ReadInt64LittleEndian(body[(at + 42)..]) : 0);
    }
}

/// <summary>One topic in the catalog: its name and resolved settings (durability as its wire value).</summary>
internal readonly record struct CatalogEntry(
    string Name, long RetentionTtlMs, long CompactionWindowMs, byte Durability, long CommitIntervalMs, long MaxMessages = 0, long MaxBytes = 0,
    bool KeepLatestPerKey = false, long TombstoneRetentionMs = 0);
