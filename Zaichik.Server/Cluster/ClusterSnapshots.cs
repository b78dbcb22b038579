using System.Formats.Tar;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using DotNext.IO;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using Zaichik.Server.Storage.Internal;

namespace Zaichik.Server.Cluster;

/// <summary>
/// The snapshots of a cluster node's topics, in <c>DataPath/cluster/snapshots</c>. Each one is a folder
/// (<c>{index}-{term}</c>) holding the view's files as they were once the entry it is named after was applied, with a
/// manifest beside it (<c>{index}-{term}.crc</c>: every file's CRC-32C and length). A snapshot is made by freezing the view
/// into <c>{index}-{term}.frozen</c> (<see cref="FrozenView"/>: what can still change copied, log segments that never
/// change again hard-linked), summing the files the previous snapshot did not already share, flushing them, writing the
/// manifest and renaming the folder: a folder with a snapshot's name is always whole and has its manifest. So a snapshot
/// costs the view's mutable files and its new sealed segments, not its size, and takes no more disk than those.
/// </summary>
/// <remarks>
/// A snapshot written by an earlier version is one tar archive (a file named <c>{index}-{term}</c>, its <c>.crc</c>
/// holding the archive's CRC-32C): it is still restored and still sent to a follower, and goes once newer ones replace it.
/// A snapshot travels to a follower as a tar stream whose first entry is the manifest.
/// </remarks>
internal sealed class ClusterSnapshots
{
    /// <summary>The folder under <c>DataPath/cluster</c>.</summary>
    public const string FolderName = "snapshots";

    private const string TemporarySuffix = ".tmp";

    /// <summary>Beside each snapshot: its manifest (a folder snapshot) or its archive's CRC-32C and length (an archive).</summary>
    public const string ChecksumSuffix = ".crc";

    /// <summary>What a snapshot found damaged at start is renamed to: kept for inspection, never read again.</summary>
    public const string DamagedSuffix = ".damaged";

    /// <summary>The folder a snapshot's files are frozen in (<c>{index}-{term}.frozen</c>) until it is complete.</summary>
    public const string FrozenSuffix = ".frozen";

    /// <summary>The name of the manifest in the tar stream a snapshot is sent as (its first entry).</summary>
    internal const string ManifestEntryName = "zaichik-snapshot.crc";

    /// <summary>Opens the snapshots of a node that is starting: what a crash left half made is deleted.</summary>
    public ClusterSnapshots(string clusterPath)
    {
        Folder = Path.Combine(clusterPath, FolderName);
        Directory.CreateDirectory(Folder);
        foreach (var path in Directory.EnumerateFiles(Folder, "*" + TemporarySuffix))
        {
            TryDelete(path);
        }

        foreach (var path in Directory.EnumerateDirectories(Folder).Where(path => path.EndsWith(FrozenSuffix, StringComparison.Ordinal) || path.EndsWith(TemporarySuffix, StringComparison.Ordinal)))
        {
            FrozenView.TryDeleteFolder(path);
        }

        // A manifest whose folder never got its name (a crash between the two).
        foreach (var path in Directory.EnumerateFiles(Folder, "*" + ChecksumSuffix))
        {
            var snapshot = path[..^ChecksumSuffix.Length];
            if (SnapshotFile.TryParse(snapshot) is not null && !File.Exists(snapshot) && !Directory.Exists(snapshot))
            {
                TryDelete(path);
            }
        }
    }

    public string Folder { get; }

    /// <summary>Every complete snapshot, oldest first.</summary>
    public List<SnapshotFile> List()
    {
        var found = new List<SnapshotFile>();
        foreach (var path in Directory.EnumerateFileSystemEntries(Folder))
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
    /// they are all in it, <see cref="Complete"/> makes them the snapshot while the view goes on.
    /// </summary>
    public FrozenView Freeze(long index, long term) => new(PathOf(index, term) + FrozenSuffix, index, term);

    /// <summary>
    /// Makes a frozen view the snapshot of its entry: sums every file (a sealed segment <paramref name="previous"/>
    /// already shares, the same file by its inode, keeps the sum the previous manifest gave it), flushes the files and
    /// folders, writes the manifest and gives the folder its name. The frozen folder (and a manifest without its folder)
    /// is deleted when this fails.
    /// </summary>
    public SnapshotFile Complete(FrozenView frozen, SnapshotFile? previous, CancellationToken cancellationToken)
    {
        var path = PathOf(frozen.Index, frozen.Term);
        try
        {
            var known = previous is { IsArchive: false } ? KnownSums(previous) : [];
            var manifest = new List<ManifestEntry>();
            long reusedBytes = 0;
            var reusedFiles = 0;
            foreach (var file in FilesOf(frozen.Path))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var inode = FileIdentity.Of(file);
                var length = new FileInfo(file).Length;
                uint crc;
                if (inode != 0 && known.TryGetValue((inode, length), out var sum))
                {
                    // The previous snapshot's own file, linked again: summed and flushed when it was first frozen.
                    crc = sum;
                    reusedFiles++;
                    reusedBytes += length;
                }
                else
                {
                    crc = Sum(file, length, flush: true);
                }

                manifest.Add(new ManifestEntry(Relative(frozen.Path, file), length, crc, inode));
            }

            FlushFolders(frozen.Path);
            WriteManifest(path + ChecksumSuffix, manifest);
            Directory.Move(frozen.Path, path);
            DirectorySync.Flush(Folder);
            return new SnapshotFile(path, frozen.Index, frozen.Term, manifest.Sum(entry => entry.Length)) { Reused = (reusedFiles, reusedBytes) };
        }
        catch when (!Directory.Exists(path))
        {
            TryDelete(path + ChecksumSuffix);
            throw;
        }
        finally
        {
            frozen.Delete();
        }
    }

    /// <summary>
    /// Stores a snapshot a leader sends (an entry with <c>IsSnapshot</c>): a tar stream, its manifest first (a leader of an
    /// earlier version sends its archive, without one). Every file is summed as it is written and checked against the
    /// manifest that came with it.
    /// </summary>
    /// <exception cref="InvalidDataException">The stream is not a whole archive, or its files differ from its manifest.</exception>
    public async Task<SnapshotFile> ReceiveAsync(LogEntry entry, CancellationToken cancellationToken)
    {
        var path = PathOf(entry.Index, entry.Term);
        var temporary = path + TemporarySuffix;
        FrozenView.TryDeleteFolder(temporary);
        Directory.CreateDirectory(temporary);
        var pipe = new Pipe();
        var sending = SendToPipeAsync(entry, pipe.Writer, cancellationToken);
        try
        {
            Dictionary<string, ManifestEntry>? sent = null;
            var manifest = new List<ManifestEntry>();
            var reader = new TarReader(pipe.Reader.AsStream(), leaveOpen: false);
            await using (reader.ConfigureAwait(false))
            {
                try
                {
                    while (await reader.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false) is { } item)
                    {
                        if (item.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile))
                        {
                            continue;
                        }

                        if (sent is null && manifest.Count == 0 && item.Name == ManifestEntryName)
                        {
                            using var text = new StreamReader(item.DataStream ?? Stream.Null, Encoding.UTF8);
                            sent = ParseManifest(await text.ReadToEndAsync(cancellationToken).ConfigureAwait(false), "the snapshot's manifest the leader sent")
                                .ToDictionary(line => line.Name, StringComparer.Ordinal);
                            continue;
                        }

                        var target = SafeTarget(temporary, item.Name);
                        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                        var summed = new ChecksumStream(new FileStream(target, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous));
                        await using (summed.ConfigureAwait(false))
                        {
                            if (item.DataStream is { } data)
                            {
                                await data.CopyToAsync(summed, 1 << 16, cancellationToken).ConfigureAwait(false);
                            }

                            await summed.FlushToDiskAsync(cancellationToken).ConfigureAwait(false);
                        }

                        manifest.Add(new ManifestEntry(Relative(temporary, target), summed.Length, summed.Crc, FileIdentity.Of(target)));
                    }
                }
                catch (Exception failure) when (failure is EndOfStreamException or FormatException or ArgumentException or InvalidOperationException)
                {
                    throw new InvalidDataException($"the snapshot at entry {entry.Index} the leader sent is not a whole tar archive: {failure.Message}", failure);
                }
            }

            await sending.ConfigureAwait(false);
            if (sent is not null)
            {
                var differs = manifest.FirstOrDefault(line => !sent.TryGetValue(line.Name, out var expected) || expected.Length != line.Length || expected.Crc != line.Crc);
                if (differs is not null || manifest.Count != sent.Count)
                {
                    throw new InvalidDataException(
                        $"the snapshot at entry {entry.Index} the leader sent does not match its manifest ({differs?.Name ?? $"{manifest.Count} files against {sent.Count}"})");
                }
            }

            FlushFolders(temporary);
            if (File.Exists(path) || Directory.Exists(path))
            {
                // The same snapshot again (an install that failed after it was stored, and was sent once more).
                Delete(new SnapshotFile(path, entry.Index, entry.Term));
            }

            WriteManifest(path + ChecksumSuffix, manifest);
            Directory.Move(temporary, path);
            DirectorySync.Flush(Folder);
            return new SnapshotFile(path, entry.Index, entry.Term, manifest.Sum(line => line.Length));
        }
        catch
        {
            await pipe.Reader.CompleteAsync().ConfigureAwait(false);
            await sending.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            FrozenView.TryDeleteFolder(temporary);
            if (!File.Exists(path) && !Directory.Exists(path))
            {
                // Written for this snapshot before the failure; a stored one of the same name keeps its own.
                TryDelete(path + ChecksumSuffix);
            }

            throw;
        }
    }

    /// <summary>
    /// Replaces everything in <paramref name="viewPath"/> with the files of <paramref name="snapshot"/>, after checking
    /// each against the manifest. The view's copy of each file follows the freezing rule: what the view can still write
    /// (a topic's last two segments, its commit, position and group files, the catalog) is copied, the rest linked.
    /// </summary>
    /// <param name="snapshot">The snapshot.</param>
    /// <param name="viewPath">The view folder, replaced.</param>
    /// <param name="verified">True when every file was summed against the manifest as it was written just before (an install).</param>
    /// <exception cref="InvalidDataException">The snapshot is damaged: a file is missing, or its length or checksum differ from the manifest.</exception>
    public static void Restore(SnapshotFile snapshot, string viewPath, bool verified = false)
    {
        if (snapshot.IsArchive)
        {
            RestoreArchive(snapshot, viewPath);
            return;
        }

        if (!verified)
        {
            Verify(snapshot);
        }

        var placed = new FrozenView(viewPath, snapshot.Index, snapshot.Term);
        placed.Add(snapshot.Path, snapshot.Path, recursive: true);

        // What the topics open next must be on disk before the Raft log that no longer holds it is trusted.
        foreach (var file in Directory.EnumerateFiles(viewPath, "*", SearchOption.AllDirectories))
        {
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.ReadWrite);
            RandomAccess.FlushToDisk(handle);
        }

        FlushFolders(viewPath);
    }

    /// <summary>Reads every file of a folder snapshot and compares it with the manifest.</summary>
    /// <exception cref="InvalidDataException">A file is missing, or differs from the manifest.</exception>
    internal static void Verify(SnapshotFile snapshot)
    {
        string text;
        try
        {
            text = File.ReadAllText(snapshot.Path + ChecksumSuffix);
        }
        catch (FileNotFoundException)
        {
            throw new InvalidDataException($"snapshot '{snapshot.Path}' has no manifest ({ChecksumSuffix})");
        }

        foreach (var expected in ParseManifest(text, $"the manifest of snapshot '{snapshot.Path}'"))
        {
            var file = Path.Combine(snapshot.Path, expected.Name);
            var length = File.Exists(file) ? new FileInfo(file).Length : -1;
            if (length != expected.Length)
            {
                throw new InvalidDataException(length < 0
                    ? $"snapshot '{snapshot.Path}' is missing '{expected.Name}'"
                    : $"snapshot '{snapshot.Path}': '{expected.Name}' has {length} bytes, written with {expected.Length}");
            }

            var crc = Sum(file, length, flush: false);
            if (crc != expected.Crc)
            {
                throw new InvalidDataException($"snapshot '{snapshot.Path}': '{expected.Name}' does not match its checksum (CRC-32C {crc:x8}, written with {expected.Crc:x8})");
            }
        }
    }

    /// <summary>Restores a snapshot written as one tar archive (by an earlier version), checking it against its checksum in the same read.</summary>
    private static void RestoreArchive(SnapshotFile snapshot, string viewPath)
    {
        if (Directory.Exists(viewPath))
        {
            Directory.Delete(viewPath, recursive: true);
        }

        Directory.CreateDirectory(viewPath);
        var expected = ReadArchiveChecksum(snapshot.Path);
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

        foreach (var file in Directory.EnumerateFiles(viewPath, "*", SearchOption.AllDirectories))
        {
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.ReadWrite);
            RandomAccess.FlushToDisk(handle);
        }

        FlushFolders(viewPath);
    }

    /// <summary>Deletes every snapshot of an entry below <paramref name="watermark"/> (the log's own snapshot is at or past it).</summary>
    public int DeleteBelow(long watermark)
    {
        var deleted = 0;
        foreach (var snapshot in List())
        {
            if (snapshot.Index < watermark && Delete(snapshot))
            {
                deleted++;
            }
        }

        return deleted;
    }

    /// <summary>Deletes one snapshot and then its manifest.</summary>
    public static bool Delete(SnapshotFile snapshot)
    {
        bool deleted;
        if (snapshot.IsArchive)
        {
            deleted = TryDelete(snapshot.Path);
        }
        else
        {
            // Renamed first, so that a folder with a snapshot's name is never half deleted.
            var doomed = snapshot.Path + ".deleted" + TemporarySuffix;
            try
            {
                Directory.Move(snapshot.Path, doomed);
                deleted = true;
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
            {
                deleted = false;
            }

            if (deleted)
            {
                FrozenView.TryDeleteFolder(doomed);
            }
        }

        if (deleted)
        {
            TryDelete(snapshot.Path + ChecksumSuffix);
        }

        return deleted;
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
        else if (Directory.Exists(path))
        {
            FrozenView.TryDeleteFolder(path + DamagedSuffix);
            Directory.Move(path, path + DamagedSuffix);
        }
    }

    private static (uint Crc, long Length)? ReadArchiveChecksum(string snapshotPath)
    {
        string text;
        try
        {
            text = File.ReadAllText(snapshotPath + ChecksumSuffix);
        }
        catch (FileNotFoundException)
        {
            // An archive written before checksums were: only its structure is checked.
            return null;
        }

        var parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return parts.Length == 3 && parts[0] == "crc32c"
            && uint.TryParse(parts[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var crc)
            && long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var length)
            ? (crc, length)
            : throw new InvalidDataException($"the checksum file of snapshot '{snapshotPath}' cannot be read: '{text.Trim()}'");
    }

    /// <summary>Every file under a snapshot's folder, in name order (the manifest's and the tar stream's order).</summary>
    internal static IEnumerable<string> FilesOf(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal);

    private static string Relative(string root, string file) => Path.GetRelativePath(root, file).Replace('\\', '/');

    /// <summary>The sums of the previous snapshot's files by (inode, length); empty when its manifest cannot be read.</summary>
    private static Dictionary<(ulong Inode, long Length), uint> KnownSums(SnapshotFile previous)
    {
        var known = new Dictionary<(ulong, long), uint>();
        try
        {
            foreach (var entry in ParseManifest(File.ReadAllText(previous.Path + ChecksumSuffix), "the previous manifest"))
            {
                if (entry.Inode != 0)
                {
                    known[(entry.Inode, entry.Length)] = entry.Crc;
                }
            }
        }
        catch (Exception exception) when (exception is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            // Deleted or unreadable: every file is summed.
        }

        return known;
    }

    /// <summary>The CRC-32C of a file's first <paramref name="length"/> bytes; with <paramref name="flush"/> the file is flushed to disk too.</summary>
    private static uint Sum(string file, long length, bool flush)
    {
        using var handle = File.OpenHandle(file, FileMode.Open, flush ? FileAccess.ReadWrite : FileAccess.Read, FileShare.Read | FileShare.Delete, FileOptions.SequentialScan);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            var state = ~0u;
            long offset = 0;
            while (offset < length)
            {
                var read = RandomAccess.Read(handle, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - offset)), offset);
                if (read == 0)
                {
                    break;
                }

                state = Storage.LogRecord.ChecksumUpdate(state, buffer.AsSpan(0, read));
                offset += read;
            }

            if (flush)
            {
                RandomAccess.FlushToDisk(handle);
            }

            return ~state;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void FlushFolders(string root)
    {
        foreach (var folder in Directory.EnumerateDirectories(root, "*", SearchOption.AllDirectories).Append(root))
        {
            DirectorySync.Flush(folder);
        }
    }

    private static void WriteManifest(string path, List<ManifestEntry> entries)
    {
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 12);
        using (var text = new StreamWriter(file, new UTF8Encoding(false), leaveOpen: true))
        {
            text.Write(ManifestEntry.Header);
            text.Write('\n');
            foreach (var entry in entries)
            {
                text.Write(entry.ToLine());
                text.Write('\n');
            }
        }

        file.Flush(flushToDisk: true);
    }

    /// <exception cref="InvalidDataException">The text is not a manifest.</exception>
    internal static List<ManifestEntry> ParseManifest(string text, string what)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length == 0 || lines[0].Trim() != ManifestEntry.Header)
        {
            throw new InvalidDataException($"{what} cannot be read: it does not start with '{ManifestEntry.Header}'");
        }

        var entries = new List<ManifestEntry>(lines.Length - 1);
        for (var i = 1; i < lines.Length; i++)
        {
            entries.Add(ManifestEntry.Parse(lines[i]) ?? throw new InvalidDataException($"{what} cannot be read: line {i + 1} is '{lines[i]}'"));
        }

        return entries;
    }

    /// <summary>Where a file of a received snapshot goes: under <paramref name="root"/>, or the snapshot is refused.</summary>
    private static string SafeTarget(string root, string name)
    {
        var target = Path.GetFullPath(Path.Combine(root, name));
        return target.StartsWith(Path.GetFullPath(root) + Path.DirectorySeparatorChar, StringComparison.Ordinal) && !Path.IsPathRooted(name)
            ? target
            : throw new InvalidDataException($"a snapshot the leader sent names a file outside its folder: '{name}'");
    }

    private static async Task SendToPipeAsync(LogEntry entry, PipeWriter writer, CancellationToken cancellationToken)
    {
        try
        {
            var stream = writer.AsStream(leaveOpen: true);
            await entry.WriteToAsync(stream, 1 << 16, cancellationToken).ConfigureAwait(false);
            await writer.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception failure)
        {
            await writer.CompleteAsync(failure).ConfigureAwait(false);
            throw;
        }
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

    /// <summary>Passes reads or writes through to a stream (which it owns) and keeps the CRC-32C and count of the bytes that went by.</summary>
    private sealed class ChecksumStream(Stream inner) : Stream
    {
        private uint _state = ~0u;
        private long _length;

        public uint Crc => ~_state;

        public override long Length => _length;

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
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        /// <summary>Flushes what was written through to the disk.</summary>
        public async Task FlushToDiskAsync(CancellationToken cancellationToken)
        {
            await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
            if (inner is FileStream file)
            {
                RandomAccess.FlushToDisk(file.SafeFileHandle);
            }
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync().ConfigureAwait(false);
            await base.DisposeAsync().ConfigureAwait(false);
        }

        private void Add(ReadOnlySpan<byte> bytes)
        {
            _state = Storage.LogRecord.ChecksumUpdate(_state, bytes);
            _length += bytes.Length;
        }
    }
}

/// <summary>
/// One line of a snapshot's manifest: <c>{crc32c hex} {length} {inode} {name}</c>, the name relative to the snapshot's
/// folder with <c>/</c> separators. The inode (0 where it is not known) lets the next snapshot recognise a sealed segment
/// it links again and keep its sum rather than read it again.
/// </summary>
internal sealed record ManifestEntry(string Name, long Length, uint Crc, ulong Inode)
{
    public const string Header = "zaichik-snapshot 1";

    public string ToLine() => string.Create(CultureInfo.InvariantCulture, $"{Crc:x8} {Length} {Inode} {Name}");

    public static ManifestEntry? Parse(string line)
    {
        var parts = line.TrimEnd('\r').Split(' ', 4);
        return parts.Length == 4
            && uint.TryParse(parts[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var crc)
            && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var length)
            && ulong.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var inode)
            && parts[3].Length > 0
            ? new ManifestEntry(parts[3], length, crc, inode)
            : null;
    }
}

/// <summary>
/// One snapshot: the state after the entry <see cref="Index"/> (of <see cref="Term"/>) was applied. A folder of the view's
/// files, or (written by an earlier version) one tar archive. What a leader sends a follower that is too far behind.
/// </summary>
internal sealed class SnapshotFile : ISnapshot
{
    public SnapshotFile(string path, long index, long term, long? bytes = null)
    {
        Path = path;
        Index = index;
        Term = term;
        IsArchive = File.Exists(path);
        _bytes = bytes;
    }

    private long? _bytes;

    public string Path { get; }

    public long Index { get; }

    public long Term { get; }

    /// <summary>A tar archive written by an earlier version, rather than a folder.</summary>
    public bool IsArchive { get; }

    /// <summary>When it was made, the files its previous snapshot shared and whose sums were kept.</summary>
    public (int Files, long Bytes) Reused { get; init; }

    /// <summary>The bytes of the view it holds (an archive's length).</summary>
    public long Bytes => _bytes ??= IsArchive ? new FileInfo(Path).Length : ManifestBytes();

    public DateTimeOffset Timestamp => IsArchive ? File.GetLastWriteTimeUtc(Path) : Directory.GetLastWriteTimeUtc(Path);

    /// <summary>An archive's length; a folder is sent as a tar stream made as it goes, whose length is not known up front.</summary>
    public long? Length => IsArchive ? new FileInfo(Path).Length : null;

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
        if (IsArchive)
        {
            var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
            await using (stream.ConfigureAwait(false))
            {
                await writer.CopyFromAsync(stream, count: null, token).ConfigureAwait(false);
            }

            return;
        }

        // The manifest first, then the files it names, as one tar stream made while it is sent.
        var pipe = new Pipe();
        var archiving = ArchiveAsync(pipe.Writer, token);
        try
        {
            await writer.CopyFromAsync(pipe.Reader, count: null, token).ConfigureAwait(false);
        }
        finally
        {
            await pipe.Reader.CompleteAsync().ConfigureAwait(false);
            await archiving.ConfigureAwait(false);
        }
    }

    private async Task ArchiveAsync(PipeWriter output, CancellationToken token)
    {
        try
        {
            var manifestPath = Path + ClusterSnapshots.ChecksumSuffix;
            var manifest = ClusterSnapshots.ParseManifest(await File.ReadAllTextAsync(manifestPath, token).ConfigureAwait(false), $"the manifest of snapshot '{Path}'");
            var tar = new TarWriter(output.AsStream(leaveOpen: true), TarEntryFormat.Pax, leaveOpen: false);
            await using (tar.ConfigureAwait(false))
            {
                await tar.WriteEntryAsync(manifestPath, ClusterSnapshots.ManifestEntryName, token).ConfigureAwait(false);
                foreach (var entry in manifest)
                {
                    var source = new FileStream(
                        System.IO.Path.Combine(Path, entry.Name), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
                    await using (source.ConfigureAwait(false))
                    {
                        await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, entry.Name) { DataStream = source }, token).ConfigureAwait(false);
                    }
                }
            }

            await output.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception failure)
        {
            await output.CompleteAsync(failure).ConfigureAwait(false);
        }
    }

    private long ManifestBytes()
    {
        try
        {
            return ClusterSnapshots.ParseManifest(File.ReadAllText(Path + ClusterSnapshots.ChecksumSuffix), "a manifest").Sum(entry => entry.Length);
        }
        catch (Exception exception) when (exception is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            return 0;
        }
    }
}

/// <summary>Which file a path names on Linux (its inode, through <c>statx</c>); 0 elsewhere or when it cannot be told.</summary>
internal static partial class FileIdentity
{
    private const int CurrentFolder = -100;
    private const uint InodeMask = 0x100;

    /// <summary>The file's inode; 0 when it cannot be told.</summary>
    public static ulong Of(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return 0;
        }

        Span<byte> buffer = stackalloc byte[256];
        buffer.Clear();
        try
        {
            if (Statx(CurrentFolder, path, 0, InodeMask, ref System.Runtime.InteropServices.MemoryMarshal.GetReference(buffer)) != 0)
            {
                return 0;
            }
        }
        catch (EntryPointNotFoundException)
        {
            return 0;
        }

        // struct statx: stx_mask (u32) at 0, stx_ino (u64) at 32: the same layout on every architecture.
        var mask = System.Runtime.InteropServices.MemoryMarshal.Read<uint>(buffer);
        return (mask & InodeMask) == 0 ? 0 : System.Runtime.InteropServices.MemoryMarshal.Read<ulong>(buffer[32..]);
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8)]
    private static partial int Statx(int folder, string path, int flags, uint mask, ref byte buffer);
}
