using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Tests.Client;

namespace Zaichik.Tests.EndToEnd;

/// <summary>
/// Shared tail reading: caught-up subscribers of a topic take new messages from its <c>TailFeed</c>, encoded once,
/// instead of each following the log with a reader of its own; a subscriber that cannot keep up goes back to the log
/// and loses nothing.
/// </summary>
public sealed class TailFeedTests
{
    private static readonly TopicOptions Retained = new() { RetentionTtl = TimeSpan.FromHours(1) };

    [Fact]
    public async Task Subscribers_that_leave_while_the_tail_delivers_to_them_cost_the_broker_nothing()
    {
        await using var server = await TestServer.StartAsync();
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync("churn", Retained);
        using var stop = new CancellationTokenSource();
        var publishing = Task.Run(async () =>
        {
            for (var i = 0; i < 1_000_000 && !stop.IsCancellationRequested; i++)
            {
                await publisher.PublishAsync("churn", $"m{i}");
            }
        });

        // Each leaves right after its first message from the tail: its writes are cancelled while the feed's dispatcher
        // may be delivering the next batch to it. None of that may reach the thread pool as an unhandled exception.
        var client = await server.ConnectAsync();
        for (var round = 0; round < 300; round++)
        {
            var subscription = await client.SubscribeAsync("churn", new SubscribeOptions { From = StartPosition.Latest, AckPolicy = AckPolicy.None });
            await ReconnectTests.ReadAsync(subscription, 1);
            await subscription.DisposeAsync();
        }

        await stop.CancelAsync();
        await publishing;
        var last = await publisher.PublishAsync("churn", "last");
        await using var reader = await client.SubscribeAsync("churn", new SubscribeOptions { From = StartPosition.Sequence(last.Sequence), AckPolicy = AckPolicy.None });
        (await ReconnectTests.ReadAsync(reader, 1))[0].PayloadText.ShouldBe("last", "the broker serves on");
    }

    [Fact]
    public async Task Many_caught_up_subscribers_share_one_tail_and_each_gets_every_message_once_in_order()
    {
        await using var server = await TestServer.StartAsync();
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync("fan", Retained);
        (await publisher.PublishAsync("fan", "before")).Sequence.ShouldBe(1);
        server.Registry.TryGet("fan", out var topic).ShouldBeTrue();

        const int noAck = 40;
        const int withAcks = 4;
        var clients = new List<ZaichikClient>();
        var subscriptions = new List<ZaichikSubscription>();
        for (var i = 0; i < noAck + withAcks; i++)
        {
            var client = await server.ConnectAsync();
            clients.Add(client);
            subscriptions.Add(await client.SubscribeAsync("fan", i < noAck
                ? new SubscribeOptions { AckPolicy = AckPolicy.None }
                : new SubscribeOptions { Prefetch = 1_000, AutoCommit = true }));
        }

        // Each reads the retained message with its own reader, then attaches to the tail and lets the reader go.
        var firsts = await Task.WhenAll(subscriptions.Select(subscription => ReconnectTests.ReadAsync(subscription, 1)));
        firsts.ShouldAllBe(messages => messages[0].Sequence == 1);
        var feed = topic!.Current!.Feed.ShouldNotBeNull();
        await TestServer.EventuallyAsync(() => feed.Attached == noAck + withAcks, "every caught-up subscriber attached to the shared tail");
        topic.Current!.Log.Readers.ShouldBeLessThan(noAck, "attached subscribers hold no log reader of their own");
        var view = server.State.Topics("fan", null, 10).Single(candidate => candidate.Name == "fan");
        view.TailSubscribers.ShouldBe(noAck + withAcks, "the state model (admin API, dashboard) shows who follows the shared tail");
        view.Readers.ShouldBe(topic.Current!.Log.Readers);

        const int count = 3_000;
        var readers = subscriptions.Select(subscription => ReconnectTests.ReadAsync(subscription, count)).ToArray();
        var acks = new List<Task<PublishResult>>();
        for (var i = 0; i < count; i++)
        {
            acks.Add(publisher.PublishAsync("fan", $"m{i}").AsTask());
            if (acks.Count % 200 == 0)
            {
                await Task.WhenAll(acks);
            }
        }

        await Task.WhenAll(acks);
        var received = await Task.WhenAll(readers);
        foreach (var messages in received)
        {
            messages.Select(message => message.Sequence).ShouldBe(Enumerable.Range(2, count).Select(i => (long)i), "every message once, in order");
            messages[^1].PayloadText.ShouldBe($"m{count - 1}");
        }

        feed.Batches.ShouldBeGreaterThan(0, "the messages went out through the shared tail");
        topic.Counters.MessagesOut.ShouldBe((long)(noAck + withAcks) * (count + 1), "each message sent once to each subscriber");
        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }

        await TestServer.EventuallyAsync(() => feed.Attached == 0, "closed connections leave the shared tail");
    }

    [Fact]
    public async Task A_subscriber_whose_window_fills_goes_back_to_the_log_and_resumes_without_gap_or_repeat()
    {
        await using var server = await TestServer.StartAsync();
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync("slow", Retained);
        server.Registry.TryGet("slow", out var topic).ShouldBeTrue();

        var fastClient = await server.ConnectAsync();
        var fast = await fastClient.SubscribeAsync("slow", new SubscribeOptions { AckPolicy = AckPolicy.None, From = StartPosition.Latest });
        var slowClient = await server.ConnectAsync();
        var slow = await slowClient.SubscribeAsync("slow", new SubscribeOptions { Prefetch = 300, From = StartPosition.Latest });
        (await publisher.PublishAsync("slow", "first")).Sequence.ShouldBe(1);
        (await ReconnectTests.ReadAsync(fast, 1))[0].Sequence.ShouldBe(1);
        var firstSlow = (await ReconnectTests.ReadAsync(slow, 1))[0];
        firstSlow.Sequence.ShouldBe(1);
        var feed = topic!.Current!.Feed.ShouldNotBeNull();
        await TestServer.EventuallyAsync(() => feed.Attached == 2, "both caught up and attached");

        // 1,000 more: the slow one may have 300 uncommitted, so its window fills and it leaves the tail.
        const int count = 1_000;
        var fastReader = ReconnectTests.ReadAsync(fast, count);
        for (var i = 0; i < count; i += 100)
        {
            await Task.WhenAll(Enumerable.Range(i, 100).Select(n => publisher.PublishAsync("slow", $"m{n}").AsTask()));
        }

        (await fastReader).Select(message => message.Sequence).ShouldBe(Enumerable.Range(2, count).Select(i => (long)i));
        var held = await ReconnectTests.ReadAsync(slow, 299);
        await TestServer.EventuallyAsync(() => feed.Attached == 1, "the slow subscriber left the shared tail when its window filled");

        // Committing lets it go on, from the log, with the rest, and it attaches again once it has caught up.
        var seen = new List<long> { firstSlow.Sequence };
        seen.AddRange(held.Select(message => message.Sequence));
        await slowClient.CommitAsync(held[^1]);
        while (seen.Count < count + 1)
        {
            var batch = await ReconnectTests.ReadAsync(slow, Math.Min(100, count + 1 - seen.Count));
            seen.AddRange(batch.Select(message => message.Sequence));
            await slowClient.CommitAsync(batch[^1]);
        }

        seen.ShouldBe(Enumerable.Range(1, count + 1).Select(i => (long)i), "no gap and no repeat across leaving and rejoining the tail");
        await TestServer.EventuallyAsync(() => feed.Attached == 2, "caught up again, it attached again");
        (await publisher.PublishAsync("slow", "last")).Sequence.ShouldBe(count + 2);
        (await ReconnectTests.ReadAsync(slow, 1))[0].PayloadText.ShouldBe("last");
        (await ReconnectTests.ReadAsync(fast, 1))[0].PayloadText.ShouldBe("last");

        // The client drops repeats by sequence, so count what the broker sent: each message once to each subscriber.
        topic.Counters.MessagesOut.ShouldBe(2L * (count + 2), "nothing was sent twice when the slow subscriber left and rejoined the tail");
    }

    [Fact]
    public async Task Subscriptions_that_cannot_use_the_shared_tail_keep_their_own_reader()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("plain", Retained);
        await client.CreateTopicAsync("latest", Retained with { KeepLatestPerKey = true });
        server.Registry.TryGet("plain", out var plain).ShouldBeTrue();
        server.Registry.TryGet("latest", out var latest).ShouldBeTrue();

        // Prefetch 1 with explicit acks: it would leave the tail at every message.
        var one = await (await server.ConnectAsync()).SubscribeAsync("plain", new SubscribeOptions { Prefetch = 1, AutoCommit = true });
        var keyed = await (await server.ConnectAsync()).SubscribeAsync("latest", new SubscribeOptions { AckPolicy = AckPolicy.None });
        await client.PublishAsync("plain", "a");
        await client.PublishAsync("latest", "v1", "k");
        (await ReconnectTests.ReadAsync(one, 1))[0].PayloadText.ShouldBe("a");
        (await ReconnectTests.ReadAsync(keyed, 1))[0].PayloadText.ShouldBe("v1");

        plain!.Current!.Feed!.Attached.ShouldBe(0);
        latest!.Current!.Feed.ShouldBeNull("readers of a latest-value topic skip superseded messages; the tail does not");
        plain.Current!.Log.Readers.ShouldBeGreaterThanOrEqualTo(1);
    }

    [Fact]
    public async Task When_publishes_outrun_the_tail_its_subscribers_read_the_rest_from_the_log_and_miss_nothing()
    {
        // A tail that holds one message: nearly every publish finds it full while the dispatcher is busy.
        await using var server = await TestServer.StartAsync(options => options with { MaxTailFeedBytes = 1 });
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync("burst", Retained);
        server.Registry.TryGet("burst", out var topic).ShouldBeTrue();

        var subscriptions = new List<ZaichikSubscription>();
        for (var i = 0; i < 12; i++)
        {
            subscriptions.Add(await (await server.ConnectAsync()).SubscribeAsync("burst", new SubscribeOptions { AckPolicy = AckPolicy.None, From = StartPosition.Latest }));
        }

        (await publisher.PublishAsync("burst", "first")).Sequence.ShouldBe(1);
        await Task.WhenAll(subscriptions.Select(subscription => ReconnectTests.ReadAsync(subscription, 1)));
        var feed = topic!.Current!.Feed.ShouldNotBeNull();
        await TestServer.EventuallyAsync(() => feed.Attached == subscriptions.Count, "all attached");

        const int count = 2_000;
        var readers = subscriptions.Select(subscription => ReconnectTests.ReadAsync(subscription, count)).ToArray();
        await Task.WhenAll(Enumerable.Range(0, count).Select(i => publisher.PublishAsync("burst", $"m{i}").AsTask()));
        foreach (var messages in await Task.WhenAll(readers))
        {
            messages.Select(message => message.Sequence).ShouldBe(Enumerable.Range(2, count).Select(i => (long)i), "every message, the last ones included");
        }

        feed.Overflows.ShouldBeGreaterThan(0, "the tail overflowed and let its subscribers go");

        // All caught up and attached again, a last burst that overflows: nothing after it reveals a gap, so only the
        // overflow itself can send them back to the log for the rest.
        await TestServer.EventuallyAsync(() => feed.Attached == subscriptions.Count, "all attached again");
        const int burst = 50;
        var lastReaders = subscriptions.Select(subscription => ReconnectTests.ReadAsync(subscription, burst)).ToArray();
        await Task.WhenAll(Enumerable.Range(0, burst).Select(i => publisher.PublishAsync("burst", $"last {i}").AsTask()));
        foreach (var messages in await Task.WhenAll(lastReaders))
        {
            messages.Select(message => message.Sequence).ShouldBe(Enumerable.Range(count + 2, burst).Select(i => (long)i));
        }

        topic.Counters.MessagesOut.ShouldBe(subscriptions.Count * (count + 1L + burst), "nothing sent twice");
    }
}
