using Zaichik.Client;

namespace Zaichik.Tests.EndToEnd;

public sealed class ConnectionTests
{
    [Fact]
    public async Task Order_is_preserved_within_a_topic_with_many_publishes_in_flight()
    {
        await using var server = await TestServer.StartAsync();
        var publisher = await server.ConnectAsync();
        var consumer = await server.ConnectAsync();
        const int total = 10_000;
        await using var reader = new MessageReader(await consumer.SubscribeAsync("ordered", new SubscribeOptions { Prefetch = 1_000, AutoCommit = true }));

        var acks = new Task<PublishResult>[total];
        for (var i = 0; i < total; i++)
        {
            acks[i] = publisher.PublishAsync("ordered", $"{i}").AsTask();
        }

        var sequences = (await Task.WhenAll(acks)).Select(r => r.Sequence).ToList();
        var received = await reader.NextAsync(total);

        sequences.ShouldBeInOrder(SortDirection.Ascending);
        received.Select(m => int.Parse(m.PayloadText)).ShouldBe(Enumerable.Range(0, total));
        received.Select(m => m.Sequence).ShouldBe(sequences);
    }

    [Fact]
    public async Task One_connection_can_publish_to_a_topic_it_subscribes_to_without_deadlock()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        const int total = 5_000;
        await using var reader = new MessageReader(await client.SubscribeAsync("self", new SubscribeOptions { Prefetch = 10, AutoCommit = true }));

        var publishing = Task.Run(async () =>
        {
            for (var i = 0; i < total; i++)
            {
                await client.PublishAsync("self", $"{i}");
            }
        });
        var received = await reader.NextAsync(total);
        await publishing.WaitAsync(MessageReader.Deadline);

        received.Select(m => int.Parse(m.PayloadText)).ShouldBe(Enumerable.Range(0, total));
    }

    [Fact]
    public async Task Unsubscribe_stops_delivery_for_that_topic_only()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        var publisher = await server.ConnectAsync();
        var stopped = await client.SubscribeAsync("stopped", new SubscribeOptions { Prefetch = 10 });
        await using var kept = new MessageReader(await client.SubscribeAsync("kept", new SubscribeOptions { Prefetch = 10 }));

        await client.UnsubscribeAsync("stopped");
        await publisher.PublishAsync("stopped", "not delivered");
        await publisher.PublishAsync("kept", "delivered");

        (await kept.NextAsync()).PayloadText.ShouldBe("delivered");
        var remaining = new List<ZaichikMessage>();
        await foreach (var message in stopped)
        {
            remaining.Add(message);
        }

        remaining.ShouldBeEmpty();
    }

    [Fact]
    public async Task Closing_the_connection_releases_its_subscriptions()
    {
        await using var server = await TestServer.StartAsync();
        var publisher = await server.ConnectAsync();
        var client = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port);
        await client.SubscribeAsync("released", new SubscribeOptions { Prefetch = 5 });
        await publisher.PublishAsync("released", "x");
        server.Registry.TryGet("released", out var topic).ShouldBeTrue();
        await TestServer.EventuallyAsync(() => topic.Current?.Log.LastSequence >= 1, "the message is in the log");

        await client.DisposeAsync();

        await TestServer.EventuallyAsync(() => server.State.Server().Connections == 1, "only the publisher stays connected");
        await server.Maintenance.SweepAllAsync(CancellationToken.None);
        topic.Current!.Log.BeginAddress.ShouldBe(topic.Current.Log.TailAddress, "with no reader left, a topic without retention keeps nothing");
    }

    [Fact]
    public async Task Subscribing_twice_to_one_topic_on_one_connection_is_refused()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.SubscribeAsync("twice");

        var error = await Should.ThrowAsync<ZaichikServerException>(async () => await client.SubscribeAsync("twice"));

        error.Code.ShouldBe(Zaichik.Protocol.ErrorCode.AlreadySubscribed);
    }

    [Fact]
    public async Task Retained_messages_are_replayed_after_a_restart()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("durable", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        var sequences = new List<long>();
        for (var i = 0; i < 100; i++)
        {
            sequences.Add((await client.PublishAsync("durable", $"m{i}")).Sequence);
        }

        await server.RestartAsync();
        var consumer = await server.ConnectAsync();
        await using var reader = new MessageReader(await consumer.SubscribeAsync("durable", new SubscribeOptions { Prefetch = 100, AutoCommit = true }));
        var replayed = await reader.NextAsync(100);
        var next = await consumer.PublishAsync("durable", "after-restart");

        replayed.Select(m => m.PayloadText).ShouldBe(Enumerable.Range(0, 100).Select(i => $"m{i}"));
        replayed.Select(m => m.Sequence).ShouldBe(sequences);
        next.Sequence.ShouldBeGreaterThan(sequences[^1]);
    }
}
