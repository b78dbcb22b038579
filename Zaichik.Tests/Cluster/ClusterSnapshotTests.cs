using Shouldly;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Server.Cluster;
using Xunit;

namespace Zaichik.Tests.Cluster;

/// <summary>Snapshots of the topics every <c>Cluster:SnapshotEntries</c> entries, compaction of the Raft log behind them, restarts from them and their installation on a node left behind.</summary>
public sealed class ClusterSnapshotTests
{
    private const int SnapshotEntries = 150;
    private static readonly TimeSpan ElectionDeadline = TimeSpan.FromSeconds(30);

    // 64 KiB Raft log files (the smallest allowed) and 1 KB messages: a snapshot lets the log delete several files.
    private static readonly string Filler = new('x', 1000);

    private static Func<int, ClusterOptions, ClusterOptions> SmallSnapshots => (_, options) => options with { SnapshotEntries = SnapshotEntries, LogChunkBytes = 64 * 1024 };

    [Fact]
    public async Task Every_node_snapshots_its_topics_and_deletes_the_Raft_log_files_the_snapshot_covers()
    {
        await using var cluster = await InProcessCluster.StartAsync(configure: SmallSnapshots);
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port);
        await client.CreateTopicAsync("ledger", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1), CompactionWindow = TimeSpan.FromHours(1) });
        for (var i = 0; i < 60; i++)
        {
            await client.PublishAsync("ledger", $"early{i}{Filler}", key: $"e{i}");
        }

        // Below the threshold: no snapshot yet, and the log keeps every file it wrote.
        var before = Enumerable.Range(0, cluster.Count).Select(node => RaftDataFiles(cluster, node)).ToArray();
        for (var node = 0; node < cluster.Count; node++)
        {
            Snapshots(cluster, node).ShouldBeEmpty();
            before[node].ShouldContain("0", $"node {node}: {string.Join(",", before[node])}");
        }

        for (var i = 0; i < 340; i++)
        {
            await client.PublishAsync("ledger", $"m{i}{Filler}", key: $"k{i}");
        }

        var reference = await ClusterReplicationTests.ReadAllAsync(cluster, leader, "ledger", 400);
        for (var node = 0; node < cluster.Count; node++)
        {
            await WaitForAsync(() => cluster.Node(node).Describe().SnapshotIndex >= 2 * SnapshotEntries, () => $"node {node} took no second snapshot{Environment.NewLine}{cluster.Describe()}");
            var describe = cluster.Node(node).Describe();
            describe.SnapshotBytes.ShouldBeGreaterThan((describe.SnapshotIndex - 5) * Filler.Length, "the snapshot holds the messages up to its entry");

            // The log deleted the files the snapshot before the newest covers (the first ones): it keeps the entries after
            // that one, which is kept too, as the fallback of the newest.
            await WaitForAsync(() => !RaftDataFiles(cluster, node).Contains("0"), () => $"node {node} kept its first Raft log file: {string.Join(",", RaftDataFiles(cluster, node))}");
            await WaitForAsync(() => Snapshots(cluster, node).Length == 2, () => $"node {node} keeps snapshots {string.Join(",", Snapshots(cluster, node))}");
            var kept = Snapshots(cluster, node).Select(name => long.Parse(name[..name.IndexOf('-', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture)).Order().ToArray();
            kept[1].ShouldBe(describe.SnapshotIndex);
            kept[0].ShouldBeLessThan(kept[1]);
            cluster.Node(node).State!.Retained!.Index.ShouldBe(kept[0], "the log compacts up to the snapshot before the newest");

            var messages = await ClusterReplicationTests.ReadAllAsync(cluster, node, "ledger", 400);
            Project(messages).ShouldBe(Project(reference), $"node {node}");
        }
    }

    [Fact]
    public async Task A_node_restarts_from_its_snapshot_and_applies_only_the_entries_after_it()
    {
        await using var cluster = await InProcessCluster.StartAsync(configure: SmallSnapshots);
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        var follower = (leader + 1) % cluster.Count;
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port);
        await client.CreateTopicAsync("ledger", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1), CompactionWindow = TimeSpan.FromHours(1) });

        // A Memory topic too: on a cluster node its view is on disk, so the snapshot holds its messages and next sequence.
        await client.CreateTopicAsync("ticks", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1), Durability = Durability.Memory });
        for (var i = 0; i < 2 * SnapshotEntries + 20; i++)
        {
            await client.PublishAsync(i % 10 == 0 ? "ticks" : "ledger", $"before{i}{Filler}", key: $"b{i}");
        }

        var ledgerBefore = (2 * SnapshotEntries + 20) * 9 / 10;
        var ticksBefore = (2 * SnapshotEntries + 20) / 10;
        await ClusterReplicationTests.ReadAllAsync(cluster, follower, "ledger", ledgerBefore);
        await ClusterReplicationTests.ReadAllAsync(cluster, follower, "ticks", ticksBefore);
        await WaitForAsync(() => cluster.Node(follower).Describe().SnapshotIndex >= 2 * SnapshotEntries, () => cluster.Describe());
        var snapshotIndex = cluster.Node(follower).Describe().SnapshotIndex;
        await cluster.StopNodeAsync(follower);

        // Fewer than SnapshotEntries: the leader still holds every entry the follower misses, so nothing is installed.
        for (var i = 0; i < 20; i++)
        {
            await client.PublishAsync(i % 10 == 0 ? "ticks" : "ledger", $"while{i}{Filler}", key: $"w{i}");
        }

        await cluster.StartNodeAsync(follower);
        foreach (var (topic, total) in new[] { ("ledger", ledgerBefore + 18), ("ticks", ticksBefore + 2) })
        {
            var rebuilt = await ClusterReplicationTests.ReadAllAsync(cluster, follower, topic, total);
            var reference = await ClusterReplicationTests.ReadAllAsync(cluster, leader, topic, total);
            rebuilt.Count.ShouldBe(total, $"{topic}: each entry in the view once");
            Project(rebuilt).ShouldBe(Project(reference), topic);
        }

        var state = cluster.Node(follower).State!;
        state.RestoredIndex.ShouldBe(snapshotIndex, "the node started from its newest snapshot");
        state.SnapshotCounts.Installed.ShouldBe(0);
        state.AppliedSinceStart.ShouldBe(state.LastApplied - snapshotIndex, "only the entries after the snapshot were applied");
        state.AppliedSinceStart.ShouldBeLessThan(60);

        // The key window came back with the files: a repeat of a key from before the snapshot is still a duplicate.
        var repeat = await client.PublishAsync("ledger", "repeat", key: "b5");
        repeat.Duplicate.ShouldBeTrue();
        repeat.Sequence.ShouldBe(5);
    }

    [Fact]
    public async Task Applying_goes_on_while_a_snapshot_is_archived_and_a_restart_from_it_rebuilds_the_linked_segments()
    {
        // 64 KiB segments: by the first snapshot the topic has segments that never change again, which are linked.
        await using var cluster = await InProcessCluster.StartAsync(
            configure: SmallSnapshots, storage: new Zaichik.Server.Storage.StorageOptions { PageSizeBits = 12, SegmentSizeBits = 16 });
        var archiving = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        for (var node = 0; node < cluster.Count; node++)
        {
            cluster.Node(node).State!.BeforeArchive = () => archiving.Task;
        }

        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        var follower = (leader + 1) % cluster.Count;
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port);
        await client.CreateTopicAsync("ledger", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1), CompactionWindow = TimeSpan.FromHours(1) });
        var total = SnapshotEntries + 100;

        // While no archive can be written, every node passes the snapshot's entry and goes on applying.
        try
        {
            await PublishAsync(client, 0, total).WaitAsync(TimeSpan.FromSeconds(60));
            for (var node = 0; node < cluster.Count; node++)
            {
                await ClusterReplicationTests.ReadAllAsync(cluster, node, "ledger", total);
                var freeze = cluster.Node(node).State!.LastFreeze.ShouldNotBeNull($"node {node} froze no snapshot");
                freeze.Index.ShouldBeGreaterThanOrEqualTo(SnapshotEntries);
                freeze.LinkedFiles.ShouldBeGreaterThan(0, $"node {node}: the segments below the last two are linked, not copied");
                freeze.CopiedBytes.ShouldBeLessThan(freeze.LinkedBytes + freeze.CopiedBytes);
                cluster.Node(node).Describe().SnapshotIndex.ShouldBe(0, $"node {node}: the archive is not written yet");
                cluster.Node(node).State!.LastApplied.ShouldBeGreaterThan(freeze.Index);
            }
        }
        finally
        {
            archiving.TrySetResult();
        }

        for (var node = 0; node < cluster.Count; node++)
        {
            var state = cluster.Node(node).State!;
            await WaitForAsync(() => cluster.Node(node).Describe().SnapshotIndex == state.LastFreeze!.Index, () => cluster.Describe());
            Directory.EnumerateDirectories(Path.Combine(cluster.DataPath(node), "cluster", ClusterSnapshots.FolderName), "*" + ClusterSnapshots.FrozenSuffix)
                .ShouldBeEmpty("the frozen folder became the snapshot");
        }

        // The follower restarts from that snapshot: its linked segments are whole in it.
        var snapshotIndex = cluster.Node(follower).Describe().SnapshotIndex;
        await cluster.StopNodeAsync(follower);
        await PublishAsync(client, total, 10);
        await cluster.StartNodeAsync(follower);
        var rebuilt = await ClusterReplicationTests.ReadAllAsync(cluster, follower, "ledger", total + 10);
        var reference = await ClusterReplicationTests.ReadAllAsync(cluster, leader, "ledger", total + 10);
        Project(rebuilt).ShouldBe(Project(reference));
        cluster.Node(follower).State!.RestoredIndex.ShouldBe(snapshotIndex, "the node started from the snapshot");
        (await client.PublishAsync("ledger", "repeat", key: "k3")).Duplicate.ShouldBeTrue("the key window came back with the files");

        static async Task PublishAsync(ZaichikClient client, int from, int count)
        {
            for (var i = from; i < from + count; i++)
            {
                await client.PublishAsync("ledger", $"m{i}{Filler}", key: $"k{i}");
            }
        }
    }

    [Fact]
    public async Task A_node_stopped_while_it_writes_a_snapshot_stops_at_once_and_starts_again_without_it()
    {
        await using var cluster = await InProcessCluster.StartAsync(configure: SmallSnapshots);
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        var follower = (leader + 1) % cluster.Count;
        var never = new TaskCompletionSource();
        cluster.Node(follower).State!.BeforeArchive = () => never.Task;
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port);
        await client.CreateTopicAsync("ledger", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1), CompactionWindow = TimeSpan.FromHours(1) });
        var total = SnapshotEntries + 30;
        for (var i = 0; i < total; i++)
        {
            await client.PublishAsync("ledger", $"m{i}{Filler}", key: $"k{i}");
        }

        await ClusterReplicationTests.ReadAllAsync(cluster, follower, "ledger", total);
        cluster.Node(follower).State!.LastFreeze.ShouldNotBeNull();
        var folder = Path.Combine(cluster.DataPath(follower), "cluster", ClusterSnapshots.FolderName);
        Directory.EnumerateDirectories(folder).ShouldHaveSingleItem("the frozen files wait for their archive");

        // The archive never gets written: stopping cancels it rather than wait for it.
        await cluster.StopNodeAsync(follower).WaitAsync(TimeSpan.FromSeconds(30));
        Directory.EnumerateFileSystemEntries(folder).ShouldAllBe(name => name.EndsWith(ClusterSnapshots.FrozenSuffix, StringComparison.Ordinal), "no snapshot was completed");
        await cluster.StartNodeAsync(follower);
        cluster.Node(follower).State!.RestoredIndex.ShouldBe(0, "there was no snapshot to start from: the whole Raft log is replayed");

        var rebuilt = await ClusterReplicationTests.ReadAllAsync(cluster, follower, "ledger", total);
        var reference = await ClusterReplicationTests.ReadAllAsync(cluster, leader, "ledger", total);
        Project(rebuilt).ShouldBe(Project(reference));
    }

    [Fact]
    public async Task A_node_left_behind_the_compacted_log_is_sent_a_snapshot_and_ends_with_the_same_topics()
    {
        await using var cluster = await InProcessCluster.StartAsync(configure: SmallSnapshots);
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        var behind = (leader + 1) % cluster.Count;
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port);
        await client.CreateTopicAsync("ledger", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1), CompactionWindow = TimeSpan.FromHours(1) });
        for (var i = 0; i < 10; i++)
        {
            await client.PublishAsync("ledger", $"early{i}", key: $"e{i}");
        }

        await ClusterReplicationTests.ReadAllAsync(cluster, behind, "ledger", 10);
        await cluster.StopNodeAsync(behind);
        for (var i = 0; i < 3 * SnapshotEntries; i++)
        {
            await client.PublishAsync("ledger", $"m{i}{Filler}", key: $"k{i}");
        }

        // The nodes that stayed compacted their logs past everything the stopped one has.
        for (var node = 0; node < cluster.Count; node++)
        {
            if (node != behind)
            {
                await WaitForAsync(() => cluster.Node(node).Describe().SnapshotIndex >= 2 * SnapshotEntries, () => cluster.Describe());
                await WaitForAsync(() => !RaftDataFiles(cluster, node).Contains("0"), () => $"node {node}: {string.Join(",", RaftDataFiles(cluster, node))}");
            }
        }

        await cluster.StartNodeAsync(behind);
        var total = 10 + 3 * SnapshotEntries;
        var caughtUp = await ClusterReplicationTests.ReadAllAsync(cluster, behind, "ledger", total);
        var reference = await ClusterReplicationTests.ReadAllAsync(cluster, leader, "ledger", total);
        Project(caughtUp).ShouldBe(Project(reference));
        cluster.Node(behind).State!.SnapshotCounts.Installed.ShouldBeGreaterThan(0, "the node could only catch up from a snapshot");
        cluster.Node(behind).Describe().SnapshotIndex.ShouldBeGreaterThanOrEqualTo(2 * SnapshotEntries);

        // It came as the leader's folder and manifest: the same files, lengths and sums, each checked as it was written.
        var installed = cluster.Node(behind).State!.LastInstalled.ShouldNotBeNull();
        installed.IsArchive.ShouldBeFalse();
        ClusterSnapshots.Verify(installed);
        var sent = Path.Combine(cluster.DataPath(leader), "cluster", ClusterSnapshots.FolderName, Path.GetFileName(installed.Path)) + ClusterSnapshots.ChecksumSuffix;
        Manifest(installed.Path + ClusterSnapshots.ChecksumSuffix).ShouldBe(Manifest(sent));

        // The same key window everywhere: a repeat is dropped on every node, and the next message has the same sequence on all.
        var repeat = await client.PublishAsync("ledger", "repeat", key: "e3");
        repeat.Duplicate.ShouldBeTrue();
        repeat.Sequence.ShouldBe(4);
        var repeatAfter = await client.PublishAsync("ledger", "repeat", key: "k100");
        repeatAfter.Duplicate.ShouldBeTrue();
        var next = await client.PublishAsync("ledger", "next", key: "fresh");
        next.Duplicate.ShouldBeFalse();
        for (var node = 0; node < cluster.Count; node++)
        {
            var messages = await ClusterReplicationTests.ReadAllAsync(cluster, node, "ledger", total + 1);
            messages.Count.ShouldBe(total + 1, $"node {node} stored a duplicate");
            messages[^1].Sequence.ShouldBe(next.Sequence, $"node {node}");
            Project(messages).ShouldBe(Project(await ClusterReplicationTests.ReadAllAsync(cluster, leader, "ledger", total + 1)), $"node {node}");
        }
    }

    [Theory]
    [InlineData("flipped")]
    [InlineData("truncated")]
    public async Task A_node_whose_newest_snapshot_is_damaged_starts_from_the_one_before_and_reports_it(string damage)
    {
        await using var cluster = await InProcessCluster.StartAsync(configure: SmallSnapshots);
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        var follower = (leader + 1) % cluster.Count;
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port);
        await client.CreateTopicAsync("ledger", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1), CompactionWindow = TimeSpan.FromHours(1) });
        var total = 2 * SnapshotEntries + 20;
        for (var i = 0; i < total; i++)
        {
            await client.PublishAsync("ledger", $"m{i}{Filler}", key: $"k{i}");
        }

        await ClusterReplicationTests.ReadAllAsync(cluster, follower, "ledger", total);
        await WaitForAsync(() => Snapshots(cluster, follower).Length == 2, () => $"snapshots {string.Join(",", Snapshots(cluster, follower))}");
        await cluster.StopNodeAsync(follower);

        var folder = Path.Combine(cluster.DataPath(follower), "cluster", ClusterSnapshots.FolderName);
        var kept = Snapshots(cluster, follower).OrderBy(name => long.Parse(name[..name.IndexOf('-', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        var newest = Path.Combine(folder, kept[1]);
        var olderIndex = long.Parse(kept[0][..kept[0].IndexOf('-', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture);
        Damage(newest, damage);

        await cluster.StartNodeAsync(follower);
        var rebuilt = await ClusterReplicationTests.ReadAllAsync(cluster, follower, "ledger", total);
        Project(rebuilt).ShouldBe(Project(await ClusterReplicationTests.ReadAllAsync(cluster, leader, "ledger", total)));

        var state = cluster.Node(follower).State!;
        state.RestoredIndex.ShouldBe(olderIndex, "the node started from the snapshot before the damaged one");
        state.SnapshotCounts.Installed.ShouldBe(0, "the node's own Raft log held the entries after it");
        Directory.Exists(newest + ClusterSnapshots.DamagedSuffix).ShouldBeTrue("set aside for inspection");
        cluster.Logs().ShouldContain($"{kept[1]}': 'topics/ledger/log.");
        cluster.Logs().ShouldContain("renamed with .damaged");

        // And it goes on: the key window is whole, and it takes part in new writes.
        (await client.PublishAsync("ledger", "repeat", key: "k5")).Duplicate.ShouldBeTrue();
        var next = await client.PublishAsync("ledger", "next", key: "fresh");
        (await ClusterReplicationTests.ReadAllAsync(cluster, follower, "ledger", total + 1))[^1].Sequence.ShouldBe(next.Sequence);
    }

    [Fact]
    public async Task A_node_whose_snapshots_are_all_damaged_refuses_to_start_and_says_how_to_recover()
    {
        await using var cluster = await InProcessCluster.StartAsync(configure: SmallSnapshots);
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        var follower = (leader + 1) % cluster.Count;
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port);
        await client.CreateTopicAsync("ledger", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        for (var i = 0; i < 2 * SnapshotEntries + 20; i++)
        {
            await client.PublishAsync("ledger", $"m{i}{Filler}");
        }

        await WaitForAsync(() => Snapshots(cluster, follower).Length == 2, () => $"snapshots {string.Join(",", Snapshots(cluster, follower))}");
        await cluster.StopNodeAsync(follower);
        var folder = Path.Combine(cluster.DataPath(follower), "cluster", ClusterSnapshots.FolderName);
        foreach (var name in Snapshots(cluster, follower))
        {
            Damage(Path.Combine(folder, name), "flipped");
        }

        // The Raft log no longer holds what the older snapshot covers: replaying it alone would build wrong topics.
        var refused = await Should.ThrowAsync<IOException>(() => cluster.StartNodeAsync(follower));
        refused.Message.ShouldContain("every cluster snapshot");
        refused.Message.ShouldContain("Move its cluster folder aside");
        cluster.IsRunning(follower).ShouldBeFalse();
    }

    /// <summary>Flips bytes in the middle of a snapshot's own copy of the topic's last segment, or cuts off its last third.</summary>
    private static void Damage(string snapshot, string how)
    {
        var path = Directory.EnumerateFiles(Path.Combine(snapshot, "topics", "ledger"), "log.*")
            .MaxBy(name => int.Parse(Path.GetFileName(name)["log.".Length..], System.Globalization.CultureInfo.InvariantCulture))!;
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        if (how == "truncated")
        {
            file.SetLength(file.Length * 2 / 3);
            return;
        }

        file.Position = file.Length / 2;
        var bytes = new byte[16];
        file.ReadExactly(bytes);
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] ^= 0x5A;
        }

        file.Position = file.Length / 2;
        file.Write(bytes);
    }

    /// <summary>A manifest's names, lengths and sums (inodes are each node's own).</summary>
    private static List<(string Name, long Length, uint Crc)> Manifest(string path) =>
        ClusterSnapshots.ParseManifest(File.ReadAllText(path), path).Select(entry => (entry.Name, entry.Length, entry.Crc)).ToList();

    private static List<(long Sequence, DateTimeOffset Timestamp, string? Key, string Payload)> Project(IReadOnlyList<Zaichik.Server.State.PeekedMessage> messages) =>
        messages.Select(message => (message.Sequence, message.Timestamp, message.Key, message.Payload)).ToList();

    /// <summary>The names of the Raft log's data files (page numbers).</summary>
    private static string[] RaftDataFiles(InProcessCluster cluster, int node)
    {
        var raft = Path.Combine(cluster.DataPath(node), "cluster", ClusterNode.RaftFolder);
        return Directory.EnumerateDirectories(raft)
            .Where(folder => !Path.GetFileName(folder).Contains("metadata", StringComparison.OrdinalIgnoreCase))
            .SelectMany(Directory.EnumerateFiles)
            .Select(Path.GetFileName)
            .OfType<string>()
            .ToArray();
    }

    private static string[] Snapshots(InProcessCluster cluster, int node)
    {
        var folder = Path.Combine(cluster.DataPath(node), "cluster", ClusterSnapshots.FolderName);
        return Directory.Exists(folder)
            ? Directory.EnumerateDirectories(folder).Select(Path.GetFileName).OfType<string>().Where(name => !name.Contains('.', StringComparison.Ordinal)).ToArray()
            : [];
    }

    private static async Task WaitForAsync(Func<bool> condition, Func<string> failure)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!condition())
        {
            if (deadline.IsCancellationRequested)
            {
                throw new TimeoutException(failure());
            }

            await Task.Delay(20, CancellationToken.None);
        }
    }
}
