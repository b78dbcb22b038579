using Zaichik.Client;

namespace Zaichik.Tests.EndToEnd;

public sealed class FlowControlTests
{
    private static readonly TimeSpan HoldBack = TimeSpan.FromMilliseconds(300);
    private static readonly TopicOptions Retained = new() { RetentionTtl = TimeSpan.FromMinutes(5) };

    [Fact]
    public async Task With_prefetch_1_one_message_is_in_flight_across_all_subscriptions_until_commit()
    {
        await using var server = await TestServer.StartAsync();
        var producer = await server.ConnectAsync();
        var consumer = await server.ConnectAsync();
        await producer.CreateTopicAsync("a", Retained);
        await producer.CreateTopicAsync("b", Retained);
        await producer.PublishAsync("a", "a1");
        await producer.PublishAsync("b", "b1");
        await using var readerA = new MessageReader(await consumer.SubscribeAsync("a"));
        await using var readerB = new MessageReader(await consumer.SubscribeAsync("b"));

        var first = await Task.WhenAny(readerA.NextAsync(), readerB.NextAsync());
        var delivered = await first;
        var other = delivered.Topic == "a" ? readerB : readerA;
        await other.ShouldReceiveNothingWithinAsync(HoldBack);

        await consumer.CommitAsync();

        (await other.NextAsync()).Topic.ShouldNotBe(delivered.Topic);
    }

    [Fact]
    public async Task Next_message_is_sent_only_after_commit()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("one-at-a-time", Retained);
        for (var i = 0; i < 3; i++)
        {
            await client.PublishAsync("one-at-a-time", $"m{i}");
        }

        await using var reader = new MessageReader(await client.SubscribeAsync("one-at-a-time"));
        (await reader.NextAsync()).PayloadText.ShouldBe("m0");
        await reader.ShouldReceiveNothingWithinAsync(HoldBack);

        await client.CommitAsync();
        (await reader.NextAsync()).PayloadText.ShouldBe("m1");
        await reader.ShouldReceiveNothingWithinAsync(HoldBack);

        await client.CommitAsync();
        (await reader.NextAsync()).PayloadText.ShouldBe("m2");
    }

    [Fact]
    public async Task With_prefetch_n_up_to_n_uncommitted_messages_are_in_flight()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("prefetch", Retained);
        for (var i = 0; i < 10; i++)
        {
            await client.PublishAsync("prefetch", $"m{i}");
        }

        await using var reader = new MessageReader(await client.SubscribeAsync("prefetch", new SubscribeOptions { Prefetch = 3 }));
        var window = await reader.NextAsync(3);
        await reader.ShouldReceiveNothingWithinAsync(HoldBack);

        // Committing up to the second message frees two places.
        await client.CommitAsync(window[1]);
        var next = await reader.NextAsync(2);
        await reader.ShouldReceiveNothingWithinAsync(HoldBack);

        window.Concat(next).Select(m => m.PayloadText).ShouldBe(["m0", "m1", "m2", "m3", "m4"]);
    }

    [Fact]
    public async Task Commit_for_a_topic_the_connection_does_not_subscribe_to_is_reported()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        var errors = new List<ZaichikServerException>();
        var reported = new TaskCompletionSource();
        client.ServerError += (_, error) =>
        {
            errors.Add(error);
            reported.TrySetResult();
        };

        await client.CommitAsync("not-subscribed", 64);
        await reported.Task.WaitAsync(MessageReader.Deadline);

        errors.ShouldHaveSingleItem().Code.ShouldBe(Zaichik.Protocol.ErrorCode.NotSubscribed);
        client.IsConnected.ShouldBeTrue();
    }
}
