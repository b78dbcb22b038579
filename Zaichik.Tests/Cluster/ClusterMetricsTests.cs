using Shouldly;
using Zaichik.Client;
using Xunit;
using static Zaichik.Tests.Admin.MetricsTests;

namespace Zaichik.Tests.Cluster;

/// <summary>
/// A cluster node's instruments in the one Meter, read from each node's <c>/metrics</c>. Broker processes: a Meter is
/// process-wide, so three nodes in one process would show each other's figures.
/// </summary>
public sealed class ClusterMetricsTests
{
    [Fact]
    public async Task Each_node_reports_its_role_term_Raft_log_and_snapshots()
    {
        const int SnapshotEntries = 50;
        await using var cluster = await BrokerCluster.StartAsync(snapshotEntries: SnapshotEntries);
        var leader = await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        await using (var client = await ZaichikClient.ConnectAsync(new ZaichikClientOptions { Host = "127.0.0.1", Port = int.Parse(cluster.Endpoints[leader].Split(':')[1], System.Globalization.CultureInfo.InvariantCulture) }))
        {
            for (var i = 0; i < 2 * SnapshotEntries; i++)
            {
                await client.PublishAsync("metered", $"reading {i}", key: $"k{i}");
            }
        }

        var view = (await cluster.DescribeAsync(leader)).ShouldNotBeNull();
        var term = view.GetProperty("term").GetInt64();
        var committed = view.GetProperty("commitIndex").GetInt64();
        committed.ShouldBeGreaterThanOrEqualTo(2 * SnapshotEntries);
        for (var node = 0; node < cluster.Count; node++)
        {
            // A follower applies what the leader committed a moment later, and the archive of a snapshot is written in the background.
            var text = await WaitForAsync(cluster, node, text =>
                Value(text, "zaichik_cluster_log_index", "kind=\"applied\"") >= committed && Value(text, "zaichik_cluster_snapshots_total", "kind=\"taken\"") >= 1);
            Value(text, "zaichik_cluster_leader").ShouldBe(node == leader ? 1 : 0, $"node {node}");
            Value(text, "zaichik_cluster_term").ShouldBe(term);
            Value(text, "zaichik_cluster_leader_changes_total").ShouldBeGreaterThanOrEqualTo(1);
            Value(text, "zaichik_cluster_log_index", "kind=\"last\"").ShouldBeGreaterThanOrEqualTo(committed);
            Value(text, "zaichik_cluster_log_index", "kind=\"committed\"").ShouldBeGreaterThanOrEqualTo(committed);
            Value(text, "zaichik_cluster_entries_refused_total").ShouldBe(0);
            Value(text, "zaichik_cluster_snapshots_total", "kind=\"installed\"").ShouldBe(0);
            Value(text, "zaichik_cluster_snapshot_index").ShouldBeGreaterThanOrEqualTo(SnapshotEntries);
            Value(text, "zaichik_cluster_snapshot_size_bytes").ShouldBeGreaterThan(SnapshotEntries * "reading 0".Length);
            Value(text, "zaichik_cluster_snapshot_duration_seconds_count", "phase=\"freeze\"").ShouldBeGreaterThanOrEqualTo(1);
            Value(text, "zaichik_cluster_snapshot_duration_seconds_count", "phase=\"total\"").ShouldBeGreaterThanOrEqualTo(1);
        }
    }

    private static async Task<string> WaitForAsync(BrokerCluster cluster, int node, Func<string, bool> condition)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            var text = await cluster.MetricsAsync(node);
            if (condition(text) || deadline.IsCancellationRequested)
            {
                return text;
            }

            await Task.Delay(100, CancellationToken.None);
        }
    }
}
