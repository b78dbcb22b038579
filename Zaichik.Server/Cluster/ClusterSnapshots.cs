using System.Formats.Tar;
using System.Globalization;
using DotNext.IO;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
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

    public ClusterSnapshots(string clusterPath)
    {
        Folder = Path.Combine(clusterPath, FolderName);
        Directory.CreateDirectory(Folder);
    }

    public string Folder { get; }

    /// <summary>Every complete snapshot, oldest first (temporary files a crash left are deleted).</summary>
    public List<SnapshotFile> List()
    {
        var found = new List<SnapshotFile>();
        foreach (var path in Directory.EnumerateFiles(Folder))
        {
            if (path.EndsWith(TemporarySuffix, StringComparison.Ordinal))
            {
                TryDelete(path);
            }
            else if (SnapshotFile.TryParse(path) is { } snapshot)
            {
                found.Add(snapshot);
            }
        }

        found.Sort((a, b) => a.Index.CompareTo(b.Index));
        return found;
    }

    /// <summary>The newest complete snapshot; null when there is none.</summary>
    public SnapshotFile? Newest() => List() is { Count: > 0 } all ? all[^1] : null;

    /// <summary>Writes a snapshot of the entry <paramref name="index"/>: <paramref name="fill"/> adds the files.</summary>
    public async Task<SnapshotFile> WriteAsync(long index, long term, Func<TarWriter, ValueTask> fill, CancellationToken cancellationToken)
    {
        var path = PathOf(index, term);
        var temporary = path + TemporarySuffix;
        try
        {
            var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            await using (stream.ConfigureAwait(false))
            {
                var tar = new TarWriter(stream, TarEntryFormat.Pax, leaveOpen: true);
                await using (tar.ConfigureAwait(false))
                {
                    await fill(tar).ConfigureAwait(false);
                }

                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }

            return Commit(temporary, path, index, term);
        }
        catch
        {
            TryDelete(temporary);
            throw;
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
            await using (stream.ConfigureAwait(false))
            {
                await entry.WriteToAsync(stream, 1 << 16, cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }

            return Commit(temporary, path, entry.Index, entry.Term);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    /// <summary>Replaces everything in <paramref name="viewPath"/> with the files of <paramref name="snapshot"/>.</summary>
    public static void Restore(SnapshotFile snapshot, string viewPath)
    {
        if (Directory.Exists(viewPath))
        {
            Directory.Delete(viewPath, recursive: true);
        }

        Directory.CreateDirectory(viewPath);
        using (var stream = new FileStream(snapshot.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16))
        {
            TarFile.ExtractToDirectory(stream, viewPath, overwriteFiles: false);
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
                deleted++;
            }
        }

        return deleted;
    }

    /// <summary>Adds a file to the archive under <paramref name="name"/>; a file that vanished meanwhile is left out.</summary>
    public static async ValueTask AddFileAsync(TarWriter tar, string path, string name, CancellationToken cancellationToken)
    {
        FileStream source;
        try
        {
            source = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16, FileOptions.SequentialScan);
        }
        catch (Exception exception) when (exception is FileNotFoundException or DirectoryNotFoundException)
        {
            return;
        }

        await using (source.ConfigureAwait(false))
        {
            // The length now: a file written meanwhile (a consumer position's slot) is copied as far as it was long.
            var entry = new PaxTarEntry(TarEntryType.RegularFile, name.Replace('\\', '/'))
            {
                DataStream = new BoundedStream(source, source.Length),
                ModificationTime = File.GetLastWriteTimeUtc(path),
            };
            await tar.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Adds every file under <paramref name="folder"/> (but temporary ones), named from <paramref name="root"/>.</summary>
    public static async ValueTask AddFolderAsync(TarWriter tar, string root, string folder, bool recursive, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(folder))
        {
            return;
        }

        foreach (var path in Directory.EnumerateFiles(folder, "*", recursive ? SearchOption.AllDirectories : SearchOption.TopDirectoryOnly))
        {
            if (!path.EndsWith(TemporarySuffix, StringComparison.Ordinal))
            {
                await AddFileAsync(tar, path, Path.GetRelativePath(root, path), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private SnapshotFile Commit(string temporary, string path, long index, long term)
    {
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

    /// <summary>Reads at most a given length of a stream.</summary>
    private sealed class BoundedStream(Stream inner, long length) : Stream
    {
        private readonly long _length = length;
        private long _remaining = length;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => _length;

        public override long Position
        {
            get => _length - _remaining;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var read = inner.Read(buffer[..(int)Math.Min(buffer.Length, _remaining)]);
            _remaining -= read;
            return read;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _remaining)], cancellationToken).ConfigureAwait(false);
            _remaining -= read;
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
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
