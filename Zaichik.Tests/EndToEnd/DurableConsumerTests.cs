using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Tests.EndToEnd;

public sealed class DurableConsumerTests
{
    private static readonly TopicOptions Retained = new() { RetentionTtl = TimeSpan.FromHours(1) };

    private static SubscribeOptions Durable(string name, int prefetch = 10) =>
        new() { DurableName = name, Prefetch = prefetch };

    [Fact]
    public async Task A_durable_consumer_resumes_after_its_last_commit_and_receives_exactly_the_uncommitted_rest()
    {
        await using var server = await TestServer.StartAsync();
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync("orders", Retained);
        for (var i = 0; i < 20; i++)
        {
            await publisher.PublishAsync("orders", $"m{i}");
        }

        await using (var first = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port))
        {
            await using var reader = new MessageReader(await first.SubscribeAsync("orders", Durable("billing")));
            var delivered = await reader.NextAsync(10);
            await first.CommitAsync(delivered[4]);
        }

        var second = await server.ConnectAsync();
        await using var resumed = new MessageReader(await second.SubscribeAsync("orders", Durable("billing", prefetch: 100) with { AutoCommit = true }));

        (await resumed.NextAsync(15)).Select(m => m.PayloadText).ShouldBe(Enumerable.Range(5, 15).Select(i => $"m{i}"));
        await resumed.ShouldReceiveNothingWithinAsync(TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task A_durable_consumers_position_survives_a_server_restart()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("restarted", Retained);
        for (var i = 0; i < 5; i++)
        {
            await client.PublishAsync("restarted", $"m{i}");
        }

        await using (var reader = new MessageReader(await client.SubscribeAsync("restarted", Durable("audit"))))
        {
            await reader.NextAsync(5);
            await client.CommitAsync();
        }

        await server.RestartAsync();
        var again = await server.ConnectAsync();
        await again.PublishAsync("restarted", "after");
        await using var resumed = new MessageReader(await again.SubscribeAsync("restarted", Durable("audit")));

        (await resumed.NextAsync()).PayloadText.ShouldBe("after");
    }

    [Fact]
    public async Task Two_durable_consumers_with_different_names_keep_separate_positions()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("shared", Retained);
        await client.PublishAsync("shared", "a");
        await client.PublishAsync("shared", "b");
        await using (var reader = new MessageReader(await client.SubscribeAsync("shared", Durable("one"))))
        {
            var first = await reader.NextAsync();
            await client.CommitAsync(first);
        }

        var other = await server.ConnectAsync();
        await using var two = new MessageReader(await other.SubscribeAsync("shared", Durable("two")));
        await using var one = new MessageReader(await client.SubscribeAsync("shared", Durable("one")));

        (await two.NextAsync()).PayloadText.ShouldBe("a");
        (await one.NextAsync()).PayloadText.ShouldBe("b");
    }

    [Fact]
    public async Task A_durable_name_is_exclusive_while_connected()
    {
        await using var server = await TestServer.StartAsync();
        var first = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port);
        var second = await server.ConnectAsync();
        await first.SubscribeAsync("exclusive", Durable("worker"));

        var error = await Should.ThrowAsync<ZaichikServerException>(async () => await second.SubscribeAsync("exclusive", Durable("worker")));
        await first.DisposeAsync();

        error.Code.ShouldBe(ErrorCode.AlreadySubscribed);
        await TestServer.EventuallyAsync(() => server.State.Server().Connections == 1, "the first connection has closed");
        await second.SubscribeAsync("exclusive", Durable("worker"));
    }

    [Fact]
    public async Task Without_retention_messages_published_while_a_durable_consumer_is_away_wait_for_it()
    {
        await using var server = await TestServer.StartAsync();
        var publisher = await server.ConnectAsync();
        await using (var consumer = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port))
        {
            await using var reader = new MessageReader(await consumer.SubscribeAsync("interest", Durable("late")));
            await publisher.PublishAsync("interest", "seen");
            await consumer.CommitAsync(await reader.NextAsync());
        }

        await publisher.PublishAsync("interest", "while-away");
        await server.Maintenance.SweepAllAsync(CancellationToken.None);
        var back = await server.ConnectAsync();
        await using var resumed = new MessageReader(await back.SubscribeAsync("interest", Durable("late")));

        (await resumed.NextAsync()).PayloadText.ShouldBe("while-away");
    }

    [Fact]
    public async Task Without_retention_a_new_durable_consumer_that_leaves_before_its_first_commit_gets_its_messages_again()
    {
        await using var server = await TestServer.StartAsync();
        var publisher = await server.ConnectAsync();
        await using (var consumer = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port))
        {
            await using var reader = new MessageReader(await consumer.SubscribeAsync("first-timer", Durable("fresh")));
            await publisher.PublishAsync("first-timer", "delivered, never committed");
            (await reader.NextAsync()).Sequence.ShouldBe(1);
        }

        await publisher.PublishAsync("first-timer", "while-away");
        await server.Maintenance.SweepAllAsync(CancellationToken.None);
        var back = await server.ConnectAsync();
        await using var resumed = new MessageReader(await back.SubscribeAsync("first-timer", Durable("fresh")));

        (await resumed.NextAsync()).PayloadText.ShouldBe("delivered, never committed", "at least once: a consumer is remembered from its first Subscribe");
        await back.CommitAsync("first-timer", 1);
        (await resumed.NextAsync()).PayloadText.ShouldBe("while-away");
    }

    [Fact]
    public async Task Invalid_durable_name_is_refused()
    {
        await using var server = await TestServer.StartAsync();
        await using var raw = await RawConnection.ConnectAsync(server.Port);

        await raw.SendAsync(writer => FrameWriter.Write(writer, new SubscribeFrame(4, "named", StartPosition.Retained, 1, "../escape")));

        var error = (await raw.ReceiveAsync()).Error!.Value;
        error.RequestId.ShouldBe(4UL);
        error.Code.ShouldBe(ErrorCode.InvalidArgument);
    }

    [Theory]
    [InlineData("random")]
    [InlineData("zeros")]
    public async Task A_durable_consumer_whose_stored_position_is_damaged_is_refused_until_it_says_where_to_resume(string damage)
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("positions", Retained);
        for (var i = 1; i <= 20; i++)
        {
            await client.PublishAsync("positions", $"m{i}");
        }

        await using (var reader = new MessageReader(await client.SubscribeAsync("positions", Durable("billing"))))
        {
            await client.CommitAsync((await reader.NextAsync(10))[^1]);
        }

        await server.RestartAsync();
        var file = Path.Combine(server.DataPath, "topics", "positions", "consumers", "billing.position");
        File.Exists(file).ShouldBeTrue();
        await File.WriteAllBytesAsync(file, damage == "zeros" ? new byte[128] : Enumerable.Range(0, 128).Select(i => (byte)(i * 7 + 3)).ToArray());
        await server.RestartAsync();
        var again = await server.ConnectAsync();

        var refused = await Should.ThrowAsync<ZaichikServerException>(async () => await again.SubscribeAsync("positions", Durable("billing")));
        refused.Code.ShouldBe(ErrorCode.ConsumerPositionLost);
        refused.Message.ShouldContain("Sequence(n)");
        await using (var resumed = new MessageReader(await again.SubscribeAsync("positions", Durable("billing") with { From = StartPosition.Sequence(15) })))
        {
            resumed.Subscription.StartSequence.ShouldBe(15);
            var next = await resumed.NextAsync();
            next.PayloadText.ShouldBe("m15");
            await again.CommitAsync(next);
        }

        await server.RestartAsync();
        var last = await server.ConnectAsync();
        await using var normal = new MessageReader(await last.SubscribeAsync("positions", Durable("billing")));
        (await normal.NextAsync()).PayloadText.ShouldBe("m16", "the position set by the Subscribe is the consumer's again");
    }

    [Fact]
    public async Task A_durable_consumer_commit_on_an_Always_topic_survives_a_restart_without_waiting_for_a_publish()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("always-positions", Retained with { Durability = Durability.Always });
        for (var i = 1; i <= 10; i++)
        {
            await client.PublishAsync("always-positions", $"m{i}");
        }

        await using (var reader = new MessageReader(await client.SubscribeAsync("always-positions", Durable("ledger"))))
        {
            await client.CommitAsync((await reader.NextAsync(4))[^1]);
            server.Registry.TryGet("always-positions", out var topic).ShouldBeTrue();
            await TestServer.EventuallyAsync(() => !topic.Current!.Positions.IsDirty, "the topic's flush writes the commit, with no publish to wake it");
        }

        await server.RestartAsync();
        var again = await server.ConnectAsync();
        await using var resumed = new MessageReader(await again.SubscribeAsync("always-positions", Durable("ledger")));
        (await resumed.NextAsync()).PayloadText.ShouldBe("m5");
    }
}
