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

            // The log deleted the files the snapshot covers (the first ones), and older snapshots went with them.
            await WaitForAsync(() => !RaftDataFiles(cluster, node).Contains("0"), () => $"node {node} kept its first Raft log file: {string.Join(",", RaftDataFiles(cluster, node))}");
            await WaitForAsync(() => Snapshots(cluster, node).Length == 1, () => $"node {node} keeps snapshots {string.Join(",", Snapshots(cluster, node))}");
            Snapshots(cluster, node).Single().ShouldStartWith($"{describe.SnapshotIndex}-");

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
        return Directory.Exists(folder) ? Directory.EnumerateFiles(folder).Select(Path.GetFileName).OfType<string>().ToArray() : [];
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
