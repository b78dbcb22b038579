using Shouldly;
using Zaichik.Client;
using Zaichik.Protocol;
using Xunit;

namespace Zaichik.Tests.Cluster;

/// <summary>Consumer groups on a cluster: their state goes through the Raft log, so a new leader resumes each group where the old one left it.</summary>
public sealed class ClusterConsumerGroupTests
{
    private static readonly TimeSpan ElectionDeadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_group_resumes_on_the_new_leader_without_redelivering_what_was_committed_or_skipping_what_was_not()
    {
        await using var cluster = await InProcessCluster.StartAsync();
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        await using (var client = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port))
        {
            await client.CreateTopicAsync("tasks", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
            for (var i = 0; i < 20; i++)
            {
                await client.PublishAsync("tasks", $"m{i}");
            }

            await using var reader = new EndToEnd.MessageReader(await client.SubscribeAsync("tasks", new SubscribeOptions
            {
                Group = "workers", From = StartPosition.Retained, Prefetch = 8, AckWait = TimeSpan.FromHours(1),
            }));
            var delivered = await reader.NextAsync(8);
            delivered.Select(message => message.PayloadText).ShouldBe(Enumerable.Range(0, 8).Select(i => $"m{i}"));

            // m0..m4 and m6 committed, one by one; m5 and m7 are in flight when the leader goes.
            foreach (var message in delivered.Where(message => message.PayloadText is not ("m5" or "m7")))
            {
                await client.CommitAsync(message);
            }

            await client.ConfirmCommitsAsync();
        }

        await cluster.StopNodeAsync(leader);
        var next = await cluster.WaitForLeaderAsync(ElectionDeadline, except: leader);
        await using var again = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(next).Port);
        await using var resumed = new EndToEnd.MessageReader(await again.SubscribeAsync("tasks", new SubscribeOptions
        {
            Group = "workers", From = StartPosition.Latest, Prefetch = 100, AckWait = TimeSpan.FromHours(1),
        }));

        // The group's stored state came with the log: From = Latest does not apply to a group that exists.
        var rest = await resumed.NextAsync(14);
        rest.Select(message => message.PayloadText).Order(StringComparer.Ordinal)
            .ShouldBe(new[] { "m5", "m7" }.Concat(Enumerable.Range(8, 12).Select(i => $"m{i}")).Order(StringComparer.Ordinal));
        rest.Single(message => message.PayloadText == "m5").DeliveryCount.ShouldBe(2);
        rest.Single(message => message.PayloadText == "m7").DeliveryCount.ShouldBe(2);

        // m8..m13 took the places the six commits freed, so the old leader may have sent them before it went; m14 on never left it.
        rest.Where(message => message.Sequence > 14).Count().ShouldBe(6);
        rest.Where(message => message.Sequence > 14).ShouldAllBe(message => message.DeliveryCount == 1);
        await resumed.ShouldReceiveNothingWithinAsync(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task A_message_past_MaxDeliver_goes_to_the_dead_letter_topic_on_every_node()
    {
        await using var cluster = await InProcessCluster.StartAsync();
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port);
        await client.CreateTopicAsync("payments", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        await client.PublishAsync("payments", "fine", key: "a");
        await client.PublishAsync("payments", "poison", key: "b");
        await using var reader = new EndToEnd.MessageReader(await client.SubscribeAsync("payments", new SubscribeOptions
        {
            Group = "billing", From = StartPosition.Retained, Prefetch = 10, MaxDeliver = 2, DeadLetterTopic = "payments.dead",
        }));

        var first = await reader.NextAsync(2);
        await client.CommitAsync(first.Single(message => message.PayloadText == "fine"));
        await client.NackAsync(first.Single(message => message.PayloadText == "poison"));
        var second = await reader.NextAsync();
        second.PayloadText.ShouldBe("poison");
        second.DeliveryCount.ShouldBe(2);
        await client.NackAsync(second);

        // The dead letter went through the log: every node has the same message at the same sequence.
        for (var node = 0; node < cluster.Count; node++)
        {
            var dead = await ClusterReplicationTests.ReadAllAsync(cluster, node, "payments.dead", 1);
            dead.Count.ShouldBe(1, $"node {node}");
            dead[0].Sequence.ShouldBe(1);
            dead[0].Payload.ShouldBe("poison");
            dead[0].Key.ShouldBe("b");
            dead[0].Headers.ShouldContain(header => header.Key == "zaichik-delivery-count" && header.Value == "2", $"node {node}");
            dead[0].Headers.ShouldContain(header => header.Key == "zaichik-dead-letter-group" && header.Value == "billing", $"node {node}");
        }

        // Created through the log with the dead-letter retention, like on a single node.
        cluster.Registry(leader).TryGet("payments.dead", out var leaderTopic).ShouldBeTrue();
        for (var node = 0; node < cluster.Count; node++)
        {
            cluster.Registry(node).TryGet("payments.dead", out var topic).ShouldBeTrue();
            topic.Settings.ShouldBe(leaderTopic.Settings, $"node {node}");
        }
    }

    [Fact]
    public async Task The_group_state_every_node_stores_is_the_leaders_once_its_commits_are_confirmed()
    {
        await using var cluster = await InProcessCluster.StartAsync();
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port);
        await client.CreateTopicAsync("jobs", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        for (var i = 0; i < 6; i++)
        {
            await client.PublishAsync("jobs", $"j{i}");
        }

        await using var reader = new EndToEnd.MessageReader(await client.SubscribeAsync("jobs", new SubscribeOptions { Group = "crew", From = StartPosition.Retained, Prefetch = 6 }));
        var delivered = await reader.NextAsync(6);
        await client.CommitAsync(delivered[0]);
        await client.CommitAsync(delivered[2]);
        await client.ConfirmCommitsAsync();

        for (var node = 0; node < cluster.Count; node++)
        {
            if (node == leader)
            {
                continue;
            }

            // What a follower keeps: all six read, the four not committed outstanding with one delivery each.
            var state = await WaitForGroupStateAsync(cluster, node, "jobs", "crew", state => state.Outstanding.Count == 4);
            state.ReadUpTo.ShouldBe(6);
            state.Outstanding.ShouldBe(new (long, uint)[] { (2, 1), (4, 1), (5, 1), (6, 1) });
        }
    }

    private static async Task<Zaichik.Server.Storage.GroupSnapshot> WaitForGroupStateAsync(
        InProcessCluster cluster, int node, string topicName, string group, Func<Zaichik.Server.Storage.GroupSnapshot, bool> done)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        Zaichik.Server.Storage.GroupSnapshot? last = null;
        while (!deadline.IsCancellationRequested)
        {
            if (cluster.Registry(node).TryGet(topicName, out var topic) && topic.Current is { } open
                && open.Positions.Groups.Get(group, out var state, out _) == Zaichik.Server.Storage.PositionState.Committed)
            {
                last = state!;
                if (done(last))
                {
                    return last;
                }
            }

            await Task.Delay(20, CancellationToken.None);
        }

        throw new TimeoutException($"node {node} did not store the expected state of group '{group}'; last: {(last is null ? "none" : string.Join(",", last.Outstanding))}");
    }
}
