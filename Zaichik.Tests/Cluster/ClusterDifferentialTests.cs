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

        // Every setting that decides what is stored, with windows and retention long enough that time plays no part.
        var hour = TimeSpan.FromHours(1);
        (string Name, TopicOptions Options)[] topics =
        [
            ("plain", new TopicOptions { RetentionTtl = hour }),
            ("window", new TopicOptions { RetentionTtl = hour, CompactionWindow = hour }),
            ("latest", new TopicOptions { RetentionTtl = hour, KeepLatestPerKey = true }),
            ("capped", new TopicOptions { RetentionTtl = hour, MaxMessages = 25 }),
            ("capped-window", new TopicOptions { RetentionTtl = hour, CompactionWindow = hour, MaxMessages = 10 }),
        ];
        foreach (var (name, options) in topics)
        {
            await alone.CreateTopicAsync(name, options);
            await replicated.CreateTopicAsync(name, options);
        }

        var random = new Random(20261129);
        string?[] keys = [null, null, "", "a", "b", "c", "d", "e"];
        ZaichikClient? afterwards = null;
        for (var i = 0; i < 400; i++)
        {
            if (leaderStopsHalfway && i == 200)
            {
                // The leader goes; the new one must answer the rest as the single broker does, from the key windows,
                // latest values, limits and producer memory it applied, and the old one comes back to the same messages.
                await cluster.StopNodeAsync(leader);
                var next = await cluster.WaitForLeaderAsync(ElectionDeadline, except: leader);
                afterwards = replicated = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(next).Port);
                await cluster.StartNodeAsync(leader);
            }

            var topic = topics[random.Next(topics.Length)].Name;
            var key = keys[random.Next(keys.Length)];
            PublishResult expected, actual;
            string what;
            if (topic == "latest" && key is { Length: > 0 } && random.Next(5) == 0)
            {
                what = $"tombstone {i} for '{key}'";
                expected = await alone.PublishTombstoneAsync(topic, key);
                actual = await replicated.PublishTombstoneAsync(topic, key);
            }
            else
            {
                var payload = random.Next(8) == 0 ? string.Empty : $"p{i}";
                var headers = random.Next(3) == 0 ? new ZaichikHeaders().Add("h", $"v{i}") : null;
                what = $"publish {i} to {topic}, key {(key is null ? "none" : $"'{key}'")}";
                expected = await alone.PublishAsync(topic, payload, key, headers);
                actual = await replicated.PublishAsync(topic, payload, key, headers);
            }

            (actual.Sequence, actual.Duplicate).ShouldBe((expected.Sequence, expected.Duplicate), what);
        }

        await using var closeAfterwards = afterwards;

        // Dead letters: the first messages of "plain", each refused once, go to a dead-letter topic with a key window
        // (where the dead letters of one key dedup each other, as any publishes would).
        const int DeadLetters = 20;
        foreach (var client in new[] { alone, replicated })
        {
            await client.CreateTopicAsync("plain.dead", new TopicOptions { RetentionTtl = hour, CompactionWindow = hour });
            var group = await client.SubscribeAsync("plain", new SubscribeOptions { Group = "g", MaxDeliver = 1, DeadLetterTopic = "plain.dead" });
            for (var i = 0; i < DeadLetters; i++)
            {
                await client.NackAsync((await Zaichik.Tests.Client.ReconnectTests.ReadAsync(group, 1))[0]);
            }

            (await Zaichik.Tests.Client.ReconnectTests.ReadAsync(group, 1)).ShouldHaveSingleItem();
        }

        // Count limits are applied by each node's sweep (every SweepInterval): compare once both sides have swept.
        foreach (var (name, _) in topics.Append(("plain.dead", new TopicOptions())))
        {
            for (var node = 0; node < cluster.Count; node++)
            {
                List<string> reference = [], stored = [];
                using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                while (!deadline.IsCancellationRequested)
                {
                    reference = Project(await PeekAsync(single.State, name));
                    stored = Project(await PeekAsync(cluster.State(node), name));
                    if (reference.Count > 0 && stored.SequenceEqual(reference))
                    {
                        break;
                    }

                    await Task.Delay(50, CancellationToken.None);
                }

                reference.ShouldNotBeEmpty(name);
                stored.ShouldBe(reference, $"{name} on node {node}");
            }
        }

        if (leaderStopsHalfway && snapshotEntries > 0)
        {
            var state = cluster.Node(leader).State!;
            (state.RestoredIndex + state.SnapshotCounts.Installed).ShouldBeGreaterThan(0, "the old leader came back from a snapshot");
        }
    }

    private static async Task<IReadOnlyList<Zaichik.Server.State.PeekedMessage>> PeekAsync(Zaichik.Server.State.BrokerState state, string topic) =>
        (await state.PeekAsync(topic, null, 10_000, "text", CancellationToken.None))?.Messages ?? [];

    private static List<string> Project(IReadOnlyList<Zaichik.Server.State.PeekedMessage> messages) =>
        messages.Select(message =>
            $"{message.Sequence} key={(message.Key is null ? "none" : $"'{message.Key}'")} payload='{message.Payload}' "
            + string.Join(",", message.Headers.Select(header => $"{header.Key}={header.Value}"))).ToList();
}
