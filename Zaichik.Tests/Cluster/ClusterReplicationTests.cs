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

    [Fact]
    public async Task Unkeyed_messages_stay_unkeyed_on_every_node_and_a_key_window_never_drops_them()
    {
        await using var cluster = await InProcessCluster.StartAsync();
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port);
        await client.CreateTopicAsync("events", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1), CompactionWindow = TimeSpan.FromHours(1) });
        var acks = new List<PublishResult>();
        for (var i = 0; i < 5; i++)
        {
            acks.Add(await client.PublishAsync("events", $"u{i}"));
        }

        acks.Add(await client.PublishAsync("events", "keyed", key: "k"));
        acks.Add(await client.PublishAsync("events", "keyed again", key: "k"));
        acks.Select(ack => ack.Duplicate).ShouldBe([false, false, false, false, false, false, true], "only the repeated key is a duplicate");
        for (var node = 0; node < cluster.Count; node++)
        {
            var messages = await ReadAllAsync(cluster, node, "events", expected: 6);
            messages.Select(message => message.Key).ShouldBe([null, null, null, null, null, "k"], $"node {node}");
        }

        var subscription = await client.SubscribeAsync("events", new SubscribeOptions { From = StartPosition.Retained, AckPolicy = AckPolicy.None });
        var received = await Zaichik.Tests.Client.ReconnectTests.ReadAsync(subscription, 6);
        received.Select(message => message.Key.HasValue).ShouldBe([false, false, false, false, false, true], "a subscriber sees no key, not an empty one");
    }

    [Fact]
    public async Task A_follower_redirects_requests_to_the_leader()
    {
        await using var cluster = await InProcessCluster.StartAsync();
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        var follower = (leader + 1) % cluster.Count;
        await cluster.WaitForLeaderAddressAsync(follower, ElectionDeadline);
        await using var raw = await EndToEnd.RawConnection.ConnectAsync(cluster.Server(follower).Port);

        await raw.SendAsync(output => FrameWriter.Write(output, new PublishFrame(7, "orders", null, "x"u8.ToArray())));
        var redirect = await raw.ReceiveRedirectAsync();
        redirect.ShouldBe(new RedirectFrame(7, "orders", $"n{leader + 1}", $"127.0.0.1:{cluster.Server(leader).Port}"));

        await raw.SendAsync(output => FrameWriter.Write(output, new SubscribeFrame(8, "orders", StartPosition.Latest, 10)));
        (await raw.ReceiveRedirectAsync()).RequestId.ShouldBe(8UL);

        await raw.SendAsync(output => FrameWriter.Write(output, new CreateTopicFrame(9, "orders", 1000, 0)));
        (await raw.ReceiveRedirectAsync()).RequestId.ShouldBe(9UL);

        await raw.SendAsync(output => FrameWriter.Write(output, new SubscribeFrame(10, "orders", StartPosition.Latest, 10, Group: "workers")));
        (await raw.ReceiveRedirectAsync()).RequestId.ShouldBe(10UL);

        // Nothing the follower was asked reached the log.
        cluster.Registry(follower).TryGet("orders", out _).ShouldBeFalse();
    }

    [Fact]
    public async Task A_follower_tells_a_version_7_client_in_an_Error_NotLeader_where_the_leader_is_and_redirects_a_version_8_one()
    {
        await using var cluster = await InProcessCluster.StartAsync();
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        var follower = (leader + 1) % cluster.Count;
        await cluster.WaitForLeaderAddressAsync(follower, ElectionDeadline);
        var leaderEndpoint = $"127.0.0.1:{cluster.Server(leader).Port}";
        await using var v7 = await EndToEnd.RawConnection.ConnectAsync(cluster.Server(follower).Port, version: 7);
        await using var v8 = await EndToEnd.RawConnection.ConnectAsync(cluster.Server(follower).Port, version: 8);

        // Version 7 does not know the Redirect frame: each request fails with a readable NotLeader instead.
        await v7.SendAsync(output => FrameWriter.Write(output, new PublishFrame(7, "orders", null, "x"u8.ToArray())));
        var (type, error, _) = await v7.ReceiveAsync();
        type.ShouldBe(FrameType.Error);
        error.ShouldBe(new ErrorFrame(7, ErrorCode.NotLeader, $"node n{leader + 1} leads topic 'orders'; connect to {leaderEndpoint}"));
        await v7.SendAsync(output => FrameWriter.Write(output, new SubscribeFrame(8, "orders", StartPosition.Latest, 10)));
        (await v7.ReceiveAsync()).Error.ShouldBe(new ErrorFrame(8, ErrorCode.NotLeader, $"node n{leader + 1} leads topic 'orders'; connect to {leaderEndpoint}"));
        await v7.SendAsync(output => FrameWriter.Write(output, new CreateTopicFrame(9, "orders", 1000, 0)));
        (await v7.ReceiveAsync()).Error!.Value.Code.ShouldBe(ErrorCode.NotLeader);

        // The connection stays open.
        await v7.SendAsync(output => FrameWriter.Write(output, new PingFrame(10)));
        (await v7.ReceiveAsync()).Type.ShouldBe(FrameType.Pong);

        // Version 8 gets the Redirect, as before.
        await v8.SendAsync(output => FrameWriter.Write(output, new PublishFrame(7, "orders", null, "x"u8.ToArray())));
        (await v8.ReceiveRedirectAsync()).ShouldBe(new RedirectFrame(7, "orders", $"n{leader + 1}", leaderEndpoint));
        cluster.Registry(follower).TryGet("orders", out _).ShouldBeFalse();
    }

    [Fact]
    public async Task A_WebSocket_client_of_a_follower_is_sent_to_the_leaders_WebSocket_url()
    {
        await using var cluster = await InProcessCluster.StartAsync();
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        var follower = (leader + 1) % cluster.Count;
        await cluster.WaitForLeaderAddressAsync(follower, ElectionDeadline);
        await using var client = await ZaichikClient.ConnectAsync(new ZaichikClientOptions { WebSocketUrl = cluster.WebSocketUrl(follower) });
        client.CurrentEndpoint.ShouldBe(cluster.WebSocketUrl(follower).ToString());

        var acks = new List<PublishResult>();
        for (var i = 0; i < 20; i++)
        {
            acks.Add(await client.PublishAsync("browsers", $"m{i}"));
        }

        acks.Select(ack => ack.Sequence).ShouldBe(Enumerable.Range(1, 20).Select(i => (long)i));
        client.CurrentEndpoint.ShouldBe(cluster.WebSocketUrl(leader).ToString());
    }

    [Fact]
    public async Task Durable_positions_and_the_key_window_survive_a_change_of_leader()
    {
        await using var cluster = await InProcessCluster.StartAsync();
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        await using (var client = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port))
        {
            await client.CreateTopicAsync("jobs", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1), CompactionWindow = TimeSpan.FromHours(1) });
            for (var i = 0; i < 20; i++)
            {
                await client.PublishAsync("jobs", $"m{i}", key: $"k{i}");
            }

            await using var reader = new EndToEnd.MessageReader(await client.SubscribeAsync("jobs", new SubscribeOptions { DurableName = "billing", Prefetch = 10 }));
            var delivered = await reader.NextAsync(10);
            await client.CommitAsync(delivered[9]);
            await client.ConfirmCommitsAsync();
        }

        await cluster.StopNodeAsync(leader);
        var next = await cluster.WaitForLeaderAsync(ElectionDeadline, except: leader);
        await using var again = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(next).Port);

        // The new leader applied the old one's key window: a repeat of k3 is still a duplicate of sequence 4.
        var repeat = await again.PublishAsync("jobs", "late repeat", key: "k3");
        repeat.ShouldBe(new PublishResult(4, Duplicate: true, Durable: true));

        // And the consumer's position: it resumes at m10, nothing committed comes again and nothing is skipped.
        await using var resumed = new EndToEnd.MessageReader(await again.SubscribeAsync("jobs", new SubscribeOptions { DurableName = "billing", Prefetch = 100 }));
        (await resumed.NextAsync(10)).Select(message => message.PayloadText).ShouldBe(Enumerable.Range(10, 10).Select(i => $"m{i}"));
    }

    [Fact]
    public async Task A_node_that_restarts_rebuilds_its_topics_from_the_log_and_catches_up()
    {
        await using var cluster = await InProcessCluster.StartAsync();
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        var follower = (leader + 1) % cluster.Count;
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port);
        await client.CreateTopicAsync("ledger", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        for (var i = 0; i < 30; i++)
        {
            await client.PublishAsync("ledger", $"before{i}");
        }

        await ReadAllAsync(cluster, follower, "ledger", 30);
        await cluster.StopNodeAsync(follower);
        for (var i = 0; i < 30; i++)
        {
            await client.PublishAsync("ledger", $"while{i}");
        }

        await cluster.StartNodeAsync(follower);
        var rebuilt = await ReadAllAsync(cluster, follower, "ledger", 60);
        var reference = await ReadAllAsync(cluster, leader, "ledger", 60);
        rebuilt.Count.ShouldBe(60, "each entry applied once, not once per start");
        rebuilt.Select(message => (message.Sequence, message.Timestamp, message.Payload)).ShouldBe(reference.Select(message => (message.Sequence, message.Timestamp, message.Payload)));
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
