using Shouldly;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Server.Topics;
using Xunit;

namespace Zaichik.Tests.Cluster;

public sealed class ClusterReplicationTests
{
    private static readonly TimeSpan ElectionDeadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Publishes_to_the_leader_are_stored_with_the_same_sequences_on_every_node()
    {
        await using var cluster = await InProcessCluster.StartAsync();
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port);
        await client.CreateTopicAsync("orders", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1), CompactionWindow = TimeSpan.FromHours(1) });
        var acks = new List<PublishResult>();
        for (var i = 0; i < 50; i++)
        {
            acks.Add(await client.PublishAsync("orders", $"m{i}", key: $"k{i}"));
        }

        acks.Select(ack => ack.Sequence).ShouldBe(Enumerable.Range(1, 50).Select(i => (long)i));

        // The key window is replicated with the messages: a repeat of a key inside it is a duplicate, naming the original.
        var repeat = await client.PublishAsync("orders", "again", key: "k7");
        repeat.Duplicate.ShouldBeTrue();
        repeat.Sequence.ShouldBe(8);
        for (var node = 0; node < cluster.Count; node++)
        {
            var messages = await ReadAllAsync(cluster, node, "orders", expected: 50);
            messages.Select(message => message.Sequence).ShouldBe(Enumerable.Range(1, 50).Select(i => (long)i), $"node {node}");
            messages.Select(message => message.Payload).ShouldBe(Enumerable.Range(0, 50).Select(i => $"m{i}"), $"node {node}");
            messages.Select(message => message.Key).ShouldBe(Enumerable.Range(0, 50).Select(i => $"k{i}"), $"node {node}");
            if (node > 0)
            {
                // The leader's stamp, not each node's clock: retention and key windows judge alike everywhere.
                messages.Select(message => message.Timestamp).ShouldBe((await ReadAllAsync(cluster, 0, "orders", 50)).Select(message => message.Timestamp), $"node {node}");
            }
        }
    }

    /// <summary>Every message node <paramref name="node"/> stores in the topic, once it stores <paramref name="expected"/>.</summary>
    internal static async Task<IReadOnlyList<Zaichik.Server.State.PeekedMessage>> ReadAllAsync(InProcessCluster cluster, int node, string topicName, int expected)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var state = cluster.State(node);
        while (true)
        {
            var peek = cluster.Registry(node).TryGet(topicName, out _) ? await state.PeekAsync(topicName, null, 10_000, "text", deadline.Token) : null;
            if (peek is not null && peek.Messages.Count >= expected)
            {
                return peek.Messages;
            }

            await Task.Delay(20, deadline.Token);
        }
    }
}
