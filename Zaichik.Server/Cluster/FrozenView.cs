using System.Globalization;
using System.Runtime.InteropServices;
using Zaichik.Server.Storage;
using Zaichik.Server.Storage.Internal;

namespace Zaichik.Server.Cluster;

/// <summary>
/// The files of a cluster snapshot, set still in a folder of their own (<c>snapshots/{index}-{term}.frozen</c>, mirroring
/// the view's layout); once summed and flushed, in the background while the node applies the entries that follow, the
/// folder is renamed and becomes the snapshot. The same rule places a snapshot's files back into a view.
/// Only what can still change is copied: a topic's last two log segments, its commit, position and group files, the
/// catalog. The segments below them and the compacted file are never written again (the log appends past them, retention
/// deletes them whole, a compaction pass writes a new compacted file and renames it), so they are hard-linked: freezing
/// costs the mutable files, not the view's size. Where a link cannot be made (another file system, Windows) the file is
/// copied.
/// </summary>
internal sealed partial class FrozenView
{
    private const string TemporarySuffix = ".tmp";

    internal FrozenView(string path, long index, long term)
    {
        Path = path;
        Index = index;
        Term = term;
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }

        Directory.CreateDirectory(path);
    }

    public string Path { get; }

    /// <summary>The entry after which the view was frozen.</summary>
    public long Index { get; }

    public long Term { get; }

    /// <summary>Files hard-linked (not copied) and their bytes.</summary>
    public (int Files, long Bytes) Linked => (_linkedFiles, _linkedBytes);

    /// <summary>Files copied and their bytes.</summary>
    public (int Files, long Bytes) Copied => (_copiedFiles, _copiedBytes);

    private int _linkedFiles;
    private long _linkedBytes;
    private int _copiedFiles;
    private long _copiedBytes;

    /// <summary>
    /// Copies the files directly in <paramref name="folder"/> (the view's top: the catalog), or every file under it
    /// with the segments and compacted files that never change again linked (a topic's folder, while the topic is held
    /// still after a clean commit). Names are kept relative to <paramref name="root"/>; a file that vanished meanwhile is
    /// left out, as are temporary files.
    /// </summary>
    public void Add(string root, string folder, bool recursive)
    {
        if (!Directory.Exists(folder))
        {
            return;
        }

        var files = Directory.EnumerateFiles(folder, "*", recursive ? SearchOption.AllDirectories : SearchOption.TopDirectoryOnly)
            .Where(path => !path.EndsWith(TemporarySuffix, StringComparison.Ordinal))
            .ToList();
        var lastSegment = recursive ? LastSegments(files) : [];
        foreach (var source in files)
        {
            var target = System.IO.Path.Combine(Path, System.IO.Path.GetRelativePath(root, source));
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(target)!);
            try
            {
                var length = new FileInfo(source).Length;
                if (recursive && NeverChanges(source, lastSegment) && TryLink(source, target))
                {
                    _linkedFiles++;
                    _linkedBytes += length;
                }
                else
                {
                    File.Copy(source, target, overwrite: false);
                    _copiedFiles++;
                    _copiedBytes += length;
                }
            }
            catch (Exception exception) when (exception is FileNotFoundException or DirectoryNotFoundException)
            {
                // Deleted meanwhile (a segment retention removed): not part of the view any more.
            }
        }
    }

    /// <summary>Deletes the folder (when it could not become a snapshot; once it has, it is no longer there).</summary>
    public void Delete() => TryDeleteFolder(Path);

    internal static void TryDeleteFolder(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            // Left for the next start, which deletes what a snapshot left frozen.
        }
    }

    /// <summary>The highest segment number in each folder among <paramref name="files"/>.</summary>
    private static Dictionary<string, int> LastSegments(List<string> files)
    {
        var last = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var file in files)
        {
            if (SegmentNumber(file) is { } segment)
            {
                var folder = System.IO.Path.GetDirectoryName(file)!;
                last[folder] = Math.Max(segment, last.GetValueOrDefault(folder, -1));
            }
        }

        return last;
    }

    /// <summary>
    /// A segment two or more below the folder's last (the page the log flushes next lies in the last segment, or at
    /// most at the end of the one before it), or a compacted file (written aside and renamed into place).
    /// </summary>
    private static bool NeverChanges(string path, Dictionary<string, int> lastSegments)
    {
        var name = System.IO.Path.GetFileName(path);
        if (name.StartsWith(CompactedLog.Prefix, StringComparison.Ordinal))
        {
            return long.TryParse(name.AsSpan(CompactedLog.Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out _);
        }

        return SegmentNumber(path) is { } segment && lastSegments.TryGetValue(System.IO.Path.GetDirectoryName(path)!, out var last) && segment < last - 1;
    }

    private static int? SegmentNumber(string path)
    {
        var name = System.IO.Path.GetFileName(path);
        return name.StartsWith(SegmentFiles.Prefix, StringComparison.Ordinal)
            && int.TryParse(name.AsSpan(SegmentFiles.Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var segment)
            ? segment
            : null;
    }

    private static bool TryLink(string source, string target) =>
        !OperatingSystem.IsWindows() && Link(source, target) == 0;

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Link(string existing, string created);
}
