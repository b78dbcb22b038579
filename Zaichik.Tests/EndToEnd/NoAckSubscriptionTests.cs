using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Tests.Client;

namespace Zaichik.Tests.EndToEnd;

/// <summary>Subscriptions with <see cref="AckPolicy.None"/>: delivery without Commit, paced by the connection alone.</summary>
public sealed class NoAckSubscriptionTests
{
    private static readonly TopicOptions Retained = new() { RetentionTtl = TimeSpan.FromHours(1) };

    [Fact]
    public async Task Every_retained_message_arrives_without_a_commit_even_with_prefetch_1()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("firehose", Retained);
        for (var i = 1; i <= 5_000; i++)
        {
            await client.PublishAsync("firehose", $"m{i}");
        }

        var subscription = await client.SubscribeAsync("firehose", new SubscribeOptions { Prefetch = 1, AckPolicy = AckPolicy.None });
        var messages = await ReconnectTests.ReadAsync(subscription, 5_000);

        messages.Select(message => message.Sequence).ShouldBe(Enumerable.Range(1, 5_000).Select(sequence => (long)sequence));
        messages[^1].PayloadText.ShouldBe("m5000");
    }

    [Fact]
    public async Task A_no_ack_subscription_and_an_explicit_one_on_one_connection_do_not_hold_each_other_up()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("work", Retained);
        await client.CreateTopicAsync("ticker", Retained);
        for (var i = 1; i <= 10; i++)
        {
            await client.PublishAsync("work", $"job {i}");
        }

        for (var i = 1; i <= 1_000; i++)
        {
            await client.PublishAsync("ticker", $"tick {i}");
        }

        var work = await client.SubscribeAsync("work", new SubscribeOptions { Prefetch = 1 });
        var firstJob = (await ReconnectTests.ReadAsync(work, 1))[0];
        var ticker = await client.SubscribeAsync("ticker", new SubscribeOptions { AckPolicy = AckPolicy.None });

        // The explicit subscription holds the connection's one message in flight; the ticker flows regardless.
        (await ReconnectTests.ReadAsync(ticker, 1_000))[^1].Sequence.ShouldBe(1_000);
        server.State.Connections().Single().Subscriptions.Single(view => view.Topic == "work").InFlight.ShouldBe(1);

        // And the ticker took none of the window: committing the job lets the next one come.
        await client.CommitAsync(firstJob);
        (await ReconnectTests.ReadAsync(work, 1))[0].Sequence.ShouldBe(2);
    }

    [Fact]
    public async Task A_commit_naming_a_no_ack_subscription_is_InvalidArgument_and_the_connection_stays_open()
    {
        await using var server = await TestServer.StartAsync();
        await using var raw = await RawConnection.ConnectAsync(server.Port);
        await raw.SendAsync(writer => FrameWriter.Write(writer, new SubscribeFrame(1, "plain", StartPosition.Latest, 1, null, AckPolicy.None)));
        (await raw.ReceiveAsync()).Ack!.Value.RequestId.ShouldBe(1UL);

        await raw.SendAsync(writer => FrameWriter.Write(writer, new CommitFrame("plain", 1)));
        var (type, error, _) = await raw.ReceiveAsync();

        type.ShouldBe(FrameType.Error);
        error!.Value.Code.ShouldBe(ErrorCode.InvalidArgument);
        error.Value.RequestId.ShouldBeNull();
        error.Value.Text.ShouldContain("AckPolicy None");
        var (ack, failure) = await raw.PublishAsync(new PublishFrame(2, "plain", null, "still open"u8.ToArray()));
        failure.ShouldBeNull();
        ack!.Value.Sequence.ShouldBe(1);
    }

    [Fact]
    public async Task The_client_sends_no_commit_for_a_no_ack_subscription()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        var errors = new List<ZaichikServerException>();
        client.ServerError += (_, error) => errors.Add(error);
        var subscription = await client.SubscribeAsync("quiet", new SubscribeOptions { From = StartPosition.Latest, AckPolicy = AckPolicy.None, AutoCommit = true });
        await client.PublishAsync("quiet", "one");
        var message = (await ReconnectTests.ReadAsync(subscription, 1))[0];

        await client.CommitAsync(message);
        await client.CommitAsync();
        await client.ConfirmCommitsAsync();

        errors.ShouldBeEmpty("no Commit naming the topic reached the server");
    }

    [Fact]
    public async Task A_durable_no_ack_consumer_resumes_after_what_was_sent_also_after_a_restart()
    {
        await using var server = await TestServer.StartAsync();
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync("audit", Retained);
        for (var i = 1; i <= 100; i++)
        {
            await publisher.PublishAsync("audit", $"event {i}");
        }

        var options = new SubscribeOptions { DurableName = "archiver", From = StartPosition.Sequence(1), AckPolicy = AckPolicy.None };
        await using (var first = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port))
        {
            var subscription = await first.SubscribeAsync("audit", options);
            (await ReconnectTests.ReadAsync(subscription, 100))[^1].Sequence.ShouldBe(100);
            await TestServer.EventuallyAsync(
                () => server.Registry.TryGet("audit", out var topic)
                    && Zaichik.Server.State.BrokerState.ConsumersOf(topic).Single().CommittedSequence == 100,
                "the position follows what was sent");
            await first.ConfirmCommitsAsync();
        }

        for (var i = 101; i <= 150; i++)
        {
            await publisher.PublishAsync("audit", $"event {i}");
        }

        await server.RestartAsync();

        await using var second = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port);
        var resumed = await second.SubscribeAsync("audit", options);
        var rest = await ReconnectTests.ReadAsync(resumed, 50);
        rest[0].Sequence.ShouldBe(101, "nothing sent before is sent again");
        rest[^1].Sequence.ShouldBe(150);
        server.State.Connections().Single().Subscriptions.Single().AckPolicy.ShouldBe("None");
    }
}
