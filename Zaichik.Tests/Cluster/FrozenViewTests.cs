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
    public async Task Freezing_copies_what_can_change_links_the_rest_and_the_snapshot_restores_the_view_as_it_was()
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

        var written = snapshots.Complete(frozen, previous: null, CancellationToken.None);
        Directory.Exists(frozen.Path).ShouldBeFalse("the frozen folder became the snapshot");
        Directory.Exists(written.Path).ShouldBeTrue();
        written.IsArchive.ShouldBeFalse();
        File.Exists(written.Path + ClusterSnapshots.ChecksumSuffix).ShouldBeTrue("the manifest is beside it");
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
    public async Task A_snapshot_shares_sealed_segments_with_the_one_before_sums_only_new_files_and_a_restore_links_them_again()
    {
        var view = Path.Combine(_root, "view");
        var topic = Path.Combine(view, "topics", "ledger");
        Directory.CreateDirectory(topic);
        await File.WriteAllBytesAsync(Path.Combine(view, "catalog"), Bytes(100, 1));
        for (var segment = 0; segment <= 4; segment++)
        {
            await File.WriteAllBytesAsync(Path.Combine(topic, $"log.{segment}"), Bytes(4096, (byte)(10 + segment)));
        }

        await File.WriteAllBytesAsync(Path.Combine(topic, "compacted.7"), Bytes(3000, 7));
        var snapshots = new ClusterSnapshots(Path.Combine(_root, "cluster"));
        var first = Snapshot(snapshots, view, topic, 10, previous: null);
        first.Reused.ShouldBe((0, 0L), "there is no snapshot before the first");
        first.Bytes.ShouldBe(100 + 5 * 4096L + 3000);

        // The log goes on: log.4 grows, log.5 begins, so log.3 never changes again.
        await File.AppendAllTextAsync(Path.Combine(topic, "log.4"), "more");
        await File.WriteAllBytesAsync(Path.Combine(topic, "log.5"), Bytes(500, 15));
        var second = Snapshot(snapshots, view, topic, 20, previous: first);
        if (OperatingSystem.IsLinux())
        {
            second.Reused.ShouldBe((4, 3 * 4096L + 3000), "log.0-2 and the compacted file are the first snapshot's own files: their sums are kept");
        }

        ClusterSnapshots.Verify(first);
        ClusterSnapshots.Verify(second);
        snapshots.List().Select(snapshot => snapshot.Index).ShouldBe([10L, 20L]);

        // The manifest is checked file by file: damage in the newest's own copy of log.5 leaves the first whole.
        var copied = Path.Combine(second.Path, "topics", "ledger", "log.5");
        var bytes = await File.ReadAllBytesAsync(copied);
        bytes[200] ^= 0x5A;
        await File.WriteAllBytesAsync(copied, bytes);
        Should.Throw<InvalidDataException>(() => ClusterSnapshots.Verify(second)).Message.ShouldContain("topics/ledger/log.5");
        ClusterSnapshots.Verify(first);
        File.Delete(copied);
        Should.Throw<InvalidDataException>(() => ClusterSnapshots.Verify(second)).Message.ShouldContain("is missing 'topics/ledger/log.5'");

        // A restore links what the view never writes again and copies the rest.
        var restored = Path.Combine(_root, "restored");
        ClusterSnapshots.Restore(first, restored);
        foreach (var name in new[] { "catalog", "topics/ledger/log.0", "topics/ledger/log.4", "topics/ledger/compacted.7" })
        {
            (await File.ReadAllBytesAsync(Path.Combine(restored, name))).ShouldBe(await File.ReadAllBytesAsync(Path.Combine(first.Path, name)), name);
        }

        if (OperatingSystem.IsLinux())
        {
            FileIdentity.Of(Path.Combine(restored, "topics", "ledger", "log.0")).ShouldBe(FileIdentity.Of(Path.Combine(first.Path, "topics", "ledger", "log.0")), "linked");
            FileIdentity.Of(Path.Combine(restored, "topics", "ledger", "log.4")).ShouldNotBe(FileIdentity.Of(Path.Combine(first.Path, "topics", "ledger", "log.4")), "copied: the view appends to it");
        }

        await File.AppendAllTextAsync(Path.Combine(restored, "topics", "ledger", "log.4"), "appended after the restore");
        ClusterSnapshots.Verify(first);
        ClusterSnapshots.Delete(first).ShouldBeTrue();
        snapshots.List().Select(snapshot => snapshot.Index).ShouldBe([20L]);
        (await File.ReadAllBytesAsync(Path.Combine(restored, "topics", "ledger", "log.0"))).ShouldBe(Bytes(4096, 10), "a linked file outlives the snapshot it came from");
    }

    [Fact]
    public async Task A_snapshot_written_as_one_archive_by_an_earlier_version_still_restores_and_is_checked()
    {
        var view = Path.Combine(_root, "old-view");
        Directory.CreateDirectory(Path.Combine(view, "topics", "ledger"));
        await File.WriteAllBytesAsync(Path.Combine(view, "catalog"), Bytes(100, 1));
        await File.WriteAllBytesAsync(Path.Combine(view, "topics", "ledger", "log.0"), Bytes(5000, 2));
        var cluster = Path.Combine(_root, "cluster");
        var folder = Path.Combine(cluster, ClusterSnapshots.FolderName);
        Directory.CreateDirectory(folder);
        var archive = Path.Combine(folder, "30-2");
        System.Formats.Tar.TarFile.CreateFromDirectory(view, archive, includeBaseDirectory: false);
        var content = await File.ReadAllBytesAsync(archive);
        await File.WriteAllTextAsync(archive + ClusterSnapshots.ChecksumSuffix, $"crc32c {Zaichik.Server.Storage.LogRecord.Checksum(content):x8} {content.Length}\n");

        var snapshots = new ClusterSnapshots(cluster);
        var newest = snapshots.Newest().ShouldNotBeNull();
        newest.IsArchive.ShouldBeTrue();
        newest.Bytes.ShouldBe(content.Length);
        var restored = Path.Combine(_root, "restored");
        snapshots.RestoreNewest(restored, []).ShouldNotBeNull().Index.ShouldBe(30);
        (await File.ReadAllBytesAsync(Path.Combine(restored, "topics", "ledger", "log.0"))).ShouldBe(Bytes(5000, 2));

        content[content.Length / 3] ^= 0x5A;
        await File.WriteAllBytesAsync(archive, content);
        var damaged = new List<string>();
        Should.Throw<IOException>(() => new ClusterSnapshots(cluster).RestoreNewest(restored, damaged));
        damaged.ShouldHaveSingleItem().ShouldContain("does not match its checksum");
    }

    private static SnapshotFile Snapshot(ClusterSnapshots snapshots, string view, string topic, long index, SnapshotFile? previous)
    {
        var frozen = snapshots.Freeze(index, 1);
        frozen.Add(view, view, recursive: false);
        frozen.Add(view, topic, recursive: true);
        return snapshots.Complete(frozen, previous, CancellationToken.None);
    }

    [Fact]
    public void A_start_deletes_what_a_snapshot_left_half_written()
    {
        var cluster = Path.Combine(_root, "cluster");
        var folder = Path.Combine(cluster, ClusterSnapshots.FolderName);
        Directory.CreateDirectory(Path.Combine(folder, "300-2" + ClusterSnapshots.FrozenSuffix, "topics", "ledger"));
        File.WriteAllBytes(Path.Combine(folder, "300-2" + ClusterSnapshots.FrozenSuffix, "topics", "ledger", "log.0"), Bytes(10, 1));
        File.WriteAllBytes(Path.Combine(folder, "300-2.tmp"), Bytes(10, 2));
        Directory.CreateDirectory(Path.Combine(folder, "400-2.tmp", "topics"));
        File.WriteAllText(Path.Combine(folder, "500-2" + ClusterSnapshots.ChecksumSuffix), "zaichik-snapshot 1\n");

        var snapshots = new ClusterSnapshots(cluster);

        Directory.EnumerateFileSystemEntries(folder).ShouldBeEmpty();
        snapshots.Newest().ShouldBeNull();
    }

    private static byte[] Bytes(int length, byte seed) => Enumerable.Range(0, length).Select(i => (byte)(seed + i)).ToArray();
}
