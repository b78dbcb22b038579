using Shouldly;
using Zaichik.Server.Cluster;
using Xunit;

namespace Zaichik.Tests.Cluster;

/// <summary>A snapshot's files frozen beside the view: mutable files copied, segments that never change again linked.</summary>
public sealed class FrozenViewTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "zaichik-frozen-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public async Task Freezing_copies_what_can_change_links_the_rest_and_the_archive_restores_the_view_as_it_was()
    {
        var view = Path.Combine(_root, "view");
        var topic = Path.Combine(view, "topics", "ledger");
        Directory.CreateDirectory(topic);
        var files = new Dictionary<string, byte[]>
        {
            ["catalog"] = Bytes(100, 1),
            [Path.Combine("topics", "ledger", "log.0")] = Bytes(4096, 2),
            [Path.Combine("topics", "ledger", "log.1")] = Bytes(4096, 3),
            [Path.Combine("topics", "ledger", "log.2")] = Bytes(4096, 4),
            [Path.Combine("topics", "ledger", "log.3")] = Bytes(4096, 5),
            [Path.Combine("topics", "ledger", "log.4")] = Bytes(1000, 6),
            [Path.Combine("topics", "ledger", "compacted.7")] = Bytes(3000, 7),
            [Path.Combine("topics", "ledger", "commits")] = Bytes(64, 8),
            [Path.Combine("topics", "ledger", "positions", "audit")] = Bytes(32, 9),
        };
        Directory.CreateDirectory(Path.Combine(topic, "positions"));
        foreach (var (name, bytes) in files)
        {
            await File.WriteAllBytesAsync(Path.Combine(view, name), bytes);
        }

        await File.WriteAllBytesAsync(Path.Combine(topic, "compacted.tmp"), Bytes(10, 10));

        var snapshots = new ClusterSnapshots(Path.Combine(_root, "cluster"));
        var frozen = snapshots.Freeze(42, 3);
        frozen.Add(view, view, recursive: false);
        frozen.Add(view, topic, recursive: true);

        frozen.Linked.ShouldBe((4, 3 * 4096L + 3000), "the segments two or more below the last, and the compacted file");
        frozen.Copied.ShouldBe((5, 100 + 4096L + 1000 + 64 + 32), "the catalog, the last two segments, the commit and position files");
        File.Exists(Path.Combine(frozen.Path, "topics", "ledger", "compacted.tmp")).ShouldBeFalse("a temporary file is not part of the view");

        // A linked file is the view's own: it costs no copy, so it must be one the view never writes again. A copied one
        // stays as it was while the view goes on.
        await File.AppendAllTextAsync(Path.Combine(topic, "log.0"), "probe");
        await File.AppendAllTextAsync(Path.Combine(topic, "log.4"), "appended after the freeze");
        await File.WriteAllBytesAsync(Path.Combine(topic, "commits"), Bytes(64, 99));
        new FileInfo(Path.Combine(frozen.Path, "topics", "ledger", "log.0")).Length.ShouldBe(4096 + 5, "log.0 is linked, not copied");
        new FileInfo(Path.Combine(frozen.Path, "topics", "ledger", "log.4")).Length.ShouldBe(1000);
        files[Path.Combine("topics", "ledger", "log.0")] = [.. files[Path.Combine("topics", "ledger", "log.0")], .. "probe"u8.ToArray()];

        var written = await snapshots.WriteAsync(frozen, CancellationToken.None);
        Directory.Exists(frozen.Path).ShouldBeFalse("the frozen files go once the archive is written");
        written.Index.ShouldBe(42);
        written.Term.ShouldBe(3);

        var restored = Path.Combine(_root, "restored");
        ClusterSnapshots.Restore(written, restored);
        Directory.EnumerateFiles(restored, "*", SearchOption.AllDirectories).Select(path => Path.GetRelativePath(restored, path)).Order()
            .ShouldBe(files.Keys.Order());
        foreach (var (name, bytes) in files)
        {
            (await File.ReadAllBytesAsync(Path.Combine(restored, name))).ShouldBe(bytes, name);
        }
    }

    [Fact]
    public void A_start_deletes_what_a_snapshot_left_half_written()
    {
        var cluster = Path.Combine(_root, "cluster");
        var folder = Path.Combine(cluster, ClusterSnapshots.FolderName);
        Directory.CreateDirectory(Path.Combine(folder, "300-2" + ClusterSnapshots.FrozenSuffix, "topics", "ledger"));
        File.WriteAllBytes(Path.Combine(folder, "300-2" + ClusterSnapshots.FrozenSuffix, "topics", "ledger", "log.0"), Bytes(10, 1));
        File.WriteAllBytes(Path.Combine(folder, "300-2.tmp"), Bytes(10, 2));

        var snapshots = new ClusterSnapshots(cluster);

        Directory.EnumerateFileSystemEntries(folder).ShouldBeEmpty();
        snapshots.Newest().ShouldBeNull();
    }

    private static byte[] Bytes(int length, byte seed) => Enumerable.Range(0, length).Select(i => (byte)(seed + i)).ToArray();
}
