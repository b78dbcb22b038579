using System.Formats.Tar;
using System.Globalization;
using DotNext.IO;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using Zaichik.Server.Storage;
using Zaichik.Server.Storage.Internal;

namespace Zaichik.Server.Cluster;

/// <summary>
/// The snapshots of a cluster node's topics, in <c>DataPath/cluster/snapshots</c>: each one a tar archive of the view
/// folder's files as they were once the entry it is named after (<c>{index}-{term}</c>) was applied. A snapshot is
/// written to a temporary name, fsynced and then renamed, so a file with a snapshot's name is always whole.
/// </summary>
internal sealed class ClusterSnapshots
{
    /// <summary>The folder under <c>DataPath/cluster</c>.</summary>
    public const string FolderName = "snapshots";

    private const string TemporarySuffix = ".tmp";

    /// <summary>How much of an archive is written between two flushes to disk.</summary>
    private const long WritebackBytes = 8L << 20;

    /// <summary>Beside each snapshot: its CRC-32C and length (<c>crc32c {hex} {length}</c>), written before the snapshot gets its name.</summary>
    public const string ChecksumSuffix = ".crc";

    /// <summary>What a snapshot found damaged at start is renamed to: kept for inspection, never read again.</summary>
    public const string DamagedSuffix = ".damaged";

    /// <summary>The folder a snapshot's files are frozen in (<c>{index}-{term}.frozen</c>) while its archive is written.</summary>
    public const string FrozenSuffix = ".frozen";

    /// <summary>Opens the snapshots of a node that is starting: what a crash left half written is deleted.</summary>
    public ClusterSnapshots(string clusterPath)
    {
        Folder = Path.Combine(clusterPath, FolderName);
        Directory.CreateDirectory(Folder);
        foreach (var path in Directory.EnumerateFiles(Folder, "*" + TemporarySuffix))
        {
            TryDelete(path);
        }

        foreach (var path in Directory.EnumerateDirectories(Folder, "*" + FrozenSuffix))
        {
            FrozenView.TryDeleteFolder(path);
        }
    }

    public string Folder { get; }

    /// <summary>Every complete snapshot, oldest first.</summary>
    public List<SnapshotFile> List()
    {
        var found = new List<SnapshotFile>();
        foreach (var path in Directory.EnumerateFiles(Folder))
        {
            if (SnapshotFile.TryParse(path) is { } snapshot)
            {
                found.Add(snapshot);
            }
        }

        found.Sort((a, b) => a.Index.CompareTo(b.Index));
        return found;
    }

    /// <summary>The newest complete snapshot; null when there is none.</summary>
    public SnapshotFile? Newest() => List() is { Count: > 0 } all ? all[^1] : null;

    /// <summary>
    /// Starts freezing the files of a snapshot of the entry <paramref name="index"/> (see <see cref="FrozenView"/>); once
    /// they are all in it, <see cref="WriteAsync(FrozenView, CancellationToken)"/> archives them while the view goes on.
    /// </summary>
    public FrozenView Freeze(long index, long term) => new(PathOf(index, term) + FrozenSuffix, index, term);

    /// <summary>
    /// Writes the archive of a frozen view as the snapshot of its entry, summing it as it goes; the frozen folder is deleted
    /// either way. The file is flushed to disk every <see cref="WritebackBytes"/> as it is written, so that its last fsync
    /// is short and the Raft log's own fsyncs never queue behind the whole archive's writeback.
    /// </summary>
    public async Task<SnapshotFile> WriteAsync(FrozenView frozen, CancellationToken cancellationToken)
    {
        var path = PathOf(frozen.Index, frozen.Term);
        var temporary = path + TemporarySuffix;
        try
        {
            var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            var summed = new ChecksumStream(stream, flushToDiskEvery: WritebackBytes);
            await using (stream.ConfigureAwait(false))
            {
                var tar = new TarWriter(summed, TarEntryFormat.Pax, leaveOpen: true);
                await using (tar.ConfigureAwait(false))
                {
                    foreach (var file in Directory.EnumerateFiles(frozen.Path, "*", SearchOption.AllDirectories))
                    {
                        // Nothing writes a frozen file: its length is known before it is copied, so the archive is
                        // written straight through, never seeking back.
                        var source = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
                        await using (source.ConfigureAwait(false))
                        {
                            var entry = new PaxTarEntry(TarEntryType.RegularFile, Path.GetRelativePath(frozen.Path, file).Replace('\\', '/'))
                            {
                                DataStream = source,
                                ModificationTime = File.GetLastWriteTimeUtc(file),
                            };
                            await tar.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
                        }
                    }
                }

                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }

            return Commit(temporary, path, frozen.Index, frozen.Term, summed);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
        finally
        {
            frozen.Delete();
        }
    }

    /// <summary>Stores a snapshot a leader sends (an entry with <c>IsSnapshot</c>).</summary>
    public async Task<SnapshotFile> ReceiveAsync(LogEntry entry, CancellationToken cancellationToken)
    {
        var path = PathOf(entry.Index, entry.Term);
        var temporary = path + TemporarySuffix;
        try
        {
            var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            var summed = new ChecksumStream(stream);
            await using (stream.ConfigureAwait(false))
            {
                await entry.WriteToAsync(summed, 1 << 16, cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }

            return Commit(temporary, path, entry.Index, entry.Term, summed);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    /// <summary>
    /// Replaces everything in <paramref name="viewPath"/> with the files of <paramref name="snapshot"/>, checking the
    /// snapshot against its checksum file on the way (one read).
    /// </summary>
    /// <exception cref="InvalidDataException">The snapshot is damaged: its checksum or length differ, or it is not a whole archive.</exception>
    public static void Restore(SnapshotFile snapshot, string viewPath)
    {
        if (Directory.Exists(viewPath))
        {
            Directory.Delete(viewPath, recursive: true);
        }

        Directory.CreateDirectory(viewPath);
        var expected = ReadChecksum(snapshot.Path);
        using (var stream = new FileStream(snapshot.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
        {
            var summed = new ChecksumStream(stream);
            try
            {
                TarFile.ExtractToDirectory(summed, viewPath, overwriteFiles: false);
            }
            catch (Exception failure) when (failure is EndOfStreamException or FormatException or ArgumentException or InvalidOperationException)
            {
                throw new InvalidDataException($"snapshot '{snapshot.Path}' is not a whole tar archive: {failure.Message}", failure);
            }

            // The archive's end marker can leave bytes unread: the checksum covers the whole file.
            summed.CopyTo(Stream.Null);
            if (expected is { } sum && (sum.Crc != summed.Crc || sum.Length != summed.Length))
            {
                throw new InvalidDataException(
                    $"snapshot '{snapshot.Path}' does not match its checksum: {summed.Length} bytes with CRC-32C {summed.Crc:x8}, written as {sum.Length} bytes with {sum.Crc:x8}");
            }
        }

        // What the topics open next must be on disk before the Raft log that no longer holds it is trusted.
        foreach (var file in Directory.EnumerateFiles(viewPath, "*", SearchOption.AllDirectories))
        {
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.ReadWrite);
            RandomAccess.FlushToDisk(handle);
        }

        foreach (var folder in Directory.EnumerateDirectories(viewPath, "*", SearchOption.AllDirectories).Append(viewPath))
        {
            DirectorySync.Flush(folder);
        }
    }

    /// <summary>Deletes every snapshot of an entry below <paramref name="watermark"/> (the log's own snapshot is at or past it).</summary>
    public int DeleteBelow(long watermark)
    {
        var deleted = 0;
        foreach (var snapshot in List())
        {
            if (snapshot.Index < watermark && TryDelete(snapshot.Path))
            {
                TryDelete(snapshot.Path + ChecksumSuffix);
                deleted++;
            }
        }

        return deleted;
    }

    /// <summary>Deletes one snapshot and its checksum.</summary>
    public static void Delete(SnapshotFile snapshot)
    {
        if (TryDelete(snapshot.Path))
        {
            TryDelete(snapshot.Path + ChecksumSuffix);
        }
    }

    /// <summary>
    /// Restores the newest snapshot that is whole into <paramref name="viewPath"/>; each damaged one on the way is renamed
    /// (<see cref="DamagedSuffix"/>) and described in <paramref name="damaged"/>. Returns null when there is none; throws when
    /// there were snapshots and every one is damaged, since the Raft log no longer holds what they covered.
    /// </summary>
    public SnapshotFile? RestoreNewest(string viewPath, List<string> damaged)
    {
        var all = List();
        for (var i = all.Count - 1; i >= 0; i--)
        {
            try
            {
                Restore(all[i], viewPath);
                return all[i];
            }
            catch (InvalidDataException failure)
            {
                damaged.Add(failure.Message);
                SetAside(all[i].Path);
                SetAside(all[i].Path + ChecksumSuffix);
            }
        }

        if (damaged.Count > 0)
        {
            throw new IOException(
                $"every cluster snapshot in '{Folder}' is damaged ({string.Join("; ", damaged)}), and the Raft log no longer holds the entries they covered: "
                + "this node cannot rebuild its topics. Move its cluster folder aside and start it again: the leader then sends it a snapshot.");
        }

        return null;
    }

    private static void SetAside(string path)
    {
        if (File.Exists(path))
        {
            File.Move(path, path + DamagedSuffix, overwrite: true);
        }
    }

    private static (uint Crc, long Length)? ReadChecksum(string snapshotPath)
    {
        string text;
        try
        {
            text = File.ReadAllText(snapshotPath + ChecksumSuffix);
        }
        catch (FileNotFoundException)
        {
            // A snapshot written before checksums were: only its archive structure is checked.
            return null;
        }

        var parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return parts.Length == 3 && parts[0] == "crc32c"
            && uint.TryParse(parts[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var crc)
            && long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var length)
            ? (crc, length)
            : throw new InvalidDataException($"the checksum file of snapshot '{snapshotPath}' cannot be read: '{text.Trim()}'");
    }

    private SnapshotFile Commit(string temporary, string path, long index, long term, ChecksumStream summed)
    {
        // The checksum first: a file with a snapshot's name always has its checksum beside it.
        using (var sum = new FileStream(path + ChecksumSuffix, FileMode.Create, FileAccess.Write, FileShare.None, 256))
        {
            sum.Write(System.Text.Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"crc32c {summed.Crc:x8} {summed.Length}\n")));
            sum.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
        DirectorySync.Flush(Folder);
        return new SnapshotFile(path, index, term);
    }

    private string PathOf(long index, long term) =>
        Path.Combine(Folder, string.Create(CultureInfo.InvariantCulture, $"{index}-{term}"));

    private static bool TryDelete(string path)
    {
        try
        {
            File.Delete(path);
            return true;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Passes reads or writes through to a stream and keeps the CRC-32C and count of the bytes that went by.</summary>
    private sealed class ChecksumStream(Stream inner, long flushToDiskEvery = 0) : Stream
    {
        private uint _state = ~0u;
        private long _unflushed;

        public uint Crc => ~_state;

        public override long Length => _length;

        private long _length;

        public override bool CanRead => inner.CanRead;

        public override bool CanSeek => false;

        public override bool CanWrite => inner.CanWrite;

        public override long Position
        {
            get => _length;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var read = inner.Read(buffer);
            Add(buffer[..read]);
            return read;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            Add(buffer.Span[..read]);
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            Add(buffer);
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            Add(buffer.Span);
            _unflushed += buffer.Length;
            if (flushToDiskEvery > 0 && _unflushed >= flushToDiskEvery && inner is FileStream file)
            {
                _unflushed = 0;
                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
                RandomAccess.FlushToDisk(file.SafeFileHandle);
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        private void Add(ReadOnlySpan<byte> bytes)
        {
            _state = LogRecord.ChecksumUpdate(_state, bytes);
            _length += bytes.Length;
        }
    }
}

/// <summary>One snapshot file: the state after the entry <see cref="Index"/> (of <see cref="Term"/>) was applied. What a leader sends a follower that is too far behind.</summary>
internal sealed class SnapshotFile(string path, long index, long term) : ISnapshot
{
    public string Path { get; } = path;

    public long Index { get; } = index;

    public long Term { get; } = term;

    public DateTimeOffset Timestamp => File.GetLastWriteTimeUtc(Path);

    public long? Length => new FileInfo(Path).Length;

    public bool IsReusable => true;

    public static SnapshotFile? TryParse(string path)
    {
        var name = System.IO.Path.GetFileName(path);
        var dash = name.IndexOf('-', StringComparison.Ordinal);
        return dash > 0
            && long.TryParse(name.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out var index)
            && long.TryParse(name.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var term)
            ? new SnapshotFile(path, index, term)
            : null;
    }

    public async ValueTask WriteToAsync<TWriter>(TWriter writer, CancellationToken token)
        where TWriter : IAsyncBinaryWriter
    {
        var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        await using (stream.ConfigureAwait(false))
        {
            await writer.CopyFromAsync(stream, count: null, token).ConfigureAwait(false);
        }
    }
}
