using Shouldly;
using Zaichik.Client;
using Zaichik.Tests.EndToEnd;
using Xunit;

namespace Zaichik.Tests.Cluster;

/// <summary>
/// A cluster must be a single broker that survives losing a node, no more and no less: the same random publishes to a
/// single broker and to a three-node cluster must get the same Acks and leave the same messages on every node.
/// </summary>
public sealed class ClusterDifferentialTests
{
    private static readonly TimeSpan ElectionDeadline = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(false, 0)]
    [InlineData(true, 0)]
    [InlineData(true, 60)]
    public async Task A_cluster_answers_and_stores_exactly_what_a_single_broker_does(bool leaderStopsHalfway, long snapshotEntries)
    {
        await using var single = await TestServer.StartAsync();

        // With snapshots, the stopped leader comes back from its newest one (or is sent the new leader's).
        await using var cluster = await InProcessCluster.StartAsync(
            configure: snapshotEntries > 0 ? (_, options) => options with { SnapshotEntries = snapshotEntries, LogChunkBytes = 64 * 1024 } : null,
            storage: snapshotEntries > 0 ? new Zaichik.Server.Storage.StorageOptions { PageSizeBits = 12, SegmentSizeBits = 14 } : null);
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        var alone = await single.ConnectAsync();
        var replicated = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port);
        await using var closeReplicated = replicated;

        var topics = RandomPublishes.Topics();
        await RandomPublishes.CreateAsync(alone, replicated, topics);
        var publishes = new RandomPublishes(20261129);
        ZaichikClient? afterwards = null;
        for (var i = 0; i < 400; i++)
        {
            if (snapshotEntries > 0 && i == 200 - 70)
            {
                // Enough unkeyed messages that the count limit removes the keyed ones, swept well before the leader
                // stops: its newest snapshot is then of a view that no longer holds messages whose key window still
                // runs, and the node that starts from it must remember them.
                for (var fill = 0; fill < 12; fill++)
                {
                    (await replicated.PublishAsync("capped-window", $"fill{fill}")).Sequence
                        .ShouldBe((await alone.PublishAsync("capped-window", $"fill{fill}")).Sequence);
                }

                await RandomPublishes.SweptAsync(cluster.State(leader), topics);
            }

            if (leaderStopsHalfway && i == 200)
            {
                // The leader goes; the new one must answer the rest as the single broker does, from the key windows,
                // latest values, limits and producer memory it applied, and the old one comes back to the same messages.
                await cluster.StopNodeAsync(leader);
                var next = await cluster.WaitForLeaderAsync(ElectionDeadline, except: leader);
                afterwards = replicated = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(next).Port);
                await cluster.StartNodeAsync(leader);
            }

            await publishes.NextAsync(i, alone, replicated, topics);
        }

        await using var closeAfterwards = afterwards;

        // Dead letters: the first messages of "plain", each refused once, go to a dead-letter topic with a key window
        // (where the dead letters of one key dedup each other, as any publishes would).
        const int DeadLetters = 20;
        foreach (var client in new[] { alone, replicated })
        {
            await client.CreateTopicAsync("plain.dead", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1), CompactionWindow = TimeSpan.FromHours(1) });
            var group = await client.SubscribeAsync("plain", new SubscribeOptions { Group = "g", MaxDeliver = 1, DeadLetterTopic = "plain.dead" });
            for (var i = 0; i < DeadLetters; i++)
            {
                await client.NackAsync((await Zaichik.Tests.Client.ReconnectTests.ReadAsync(group, 1))[0]);
            }

            (await Zaichik.Tests.Client.ReconnectTests.ReadAsync(group, 1)).ShouldHaveSingleItem();
        }

        foreach (var (name, _) in topics.Append(("plain.dead", new TopicOptions())))
        {
            for (var node = 0; node < cluster.Count; node++)
            {
                await RandomPublishes.ShouldStoreTheSameAsync(single.State, cluster.State(node), name, $"{name} on node {node}");
            }
        }

        if (leaderStopsHalfway && snapshotEntries > 0)
        {
            var state = cluster.Node(leader).State!;
            (state.RestoredIndex + state.SnapshotCounts.Installed).ShouldBeGreaterThan(0, "the old leader came back from a snapshot");
        }
    }
}
