using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;
using Shouldly;
using Xunit;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Client;

/// <summary>The client against a real broker that stops, restarts or loses replies: it reconnects and carries on.</summary>
public sealed class ReconnectTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private static ZaichikClientOptions Fast(int port) => new()
    {
        Host = "127.0.0.1",
        Port = port,
        Reconnect = new() { MinDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(100) },
        CloseTimeout = TimeSpan.FromSeconds(1),
    };

    [Fact]
    public async Task A_publish_made_while_the_broker_is_down_waits_and_is_stored_once_it_is_back()
    {
        await using var server = await TestServer.StartAsync();
        await using var client = await ZaichikClient.ConnectAsync(Fast(server.Port));
        var disconnected = new TaskCompletionSource<ZaichikConnectionException>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Disconnected += (_, e) => disconnected.TrySetResult(e);
        client.Reconnected += (_, _) => reconnected.TrySetResult();
        (await client.PublishAsync("waits", "before")).Sequence.ShouldBe(1);

        await server.StopAsync();
        await disconnected.Task.WaitAsync(Patience);
        client.ConnectionState.ShouldBe(ZaichikConnectionState.Reconnecting);
        var publishing = client.PublishAsync("waits", "while down").AsTask();
        publishing.IsCompleted.ShouldBeFalse("a publish waits for the connection instead of failing");

        await server.StartAgainAsync();
        (await publishing.WaitAsync(Patience)).Sequence.ShouldBe(2);
        await reconnected.Task.WaitAsync(Patience);
        client.ConnectionState.ShouldBe(ZaichikConnectionState.Connected);
        (await client.PublishAsync("waits", "after")).Sequence.ShouldBe(3);
    }

    [Fact]
    public async Task A_subscription_resumes_right_after_the_last_message_it_received()
    {
        await using var server = await TestServer.StartAsync();
        await using var client = await ZaichikClient.ConnectAsync(Fast(server.Port));
        await ResumesAcrossRestartAsync(server, client);
    }

    /// <summary>
    /// Ten messages, a broker restart on the same folder and ports, ten more: an auto-committing subscription of
    /// <paramref name="client"/> (which reconnects) receives all twenty once, in order. Over TCP here and over WebSocket.
    /// </summary>
    internal static async Task ResumesAcrossRestartAsync(TestServer server, ZaichikClient client)
    {
        await client.CreateTopicAsync("resume", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        await using var subscription = await client.SubscribeAsync("resume", new SubscribeOptions { Prefetch = 100, AutoCommit = true });
        var received = new List<long>();
        using var reading = new CancellationTokenSource(Patience);
        await using var enumerator = subscription.GetAsyncEnumerator(reading.Token);
        for (var i = 0; i < 10; i++)
        {
            await client.PublishAsync("resume", $"m{i}");
        }

        while (received.Count < 10 && await enumerator.MoveNextAsync())
        {
            received.Add(enumerator.Current.Sequence);
        }

        await server.StopAsync();
        await server.StartAgainAsync();
        for (var i = 10; i < 20; i++)
        {
            await client.PublishAsync("resume", $"m{i}");
        }

        while (received.Count < 20 && await enumerator.MoveNextAsync())
        {
            received.Add(enumerator.Current.Sequence);
        }

        received.ShouldBe(Enumerable.Range(1, 20).Select(i => (long)i), "every message once, in order, across the restart");
    }

    [Fact]
    public async Task Messages_the_topic_no_longer_holds_are_reported_as_a_SubscriptionGap()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync();
        // The client's reconnect waits on a fake clock, so the test decides when it comes back.
        await using var client = await ZaichikClient.ConnectAsync(Fast(server.Port) with
        {
            TimeProvider = time,
            PingInterval = Timeout.InfiniteTimeSpan,
            Reconnect = new() { MinDelay = TimeSpan.FromSeconds(1), MaxDelay = TimeSpan.FromSeconds(1) },
        });
        var gaps = new ConcurrentQueue<ZaichikSubscriptionGap>();
        client.SubscriptionGap += (_, gap) => gaps.Enqueue(gap);
        await using var subscription = await client.SubscribeAsync("no-retention", new SubscribeOptions { Prefetch = 100, AutoCommit = true });
        using var reading = new CancellationTokenSource(Patience);
        await using var enumerator = subscription.GetAsyncEnumerator(reading.Token);
        await client.PublishAsync("no-retention", "seen");
        (await enumerator.MoveNextAsync()).ShouldBeTrue();
        enumerator.Current.Sequence.ShouldBe(1);

        await server.StopAsync();
        await server.StartAgainAsync();
        await using (var other = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port))
        {
            for (var i = 0; i < 3; i++)
            {
                await other.PublishAsync("no-retention", $"missed {i}");
            }
        }

        await TestServer.EventuallyAsync(
            () =>
            {
                time.Advance(TimeSpan.FromSeconds(1));
                return client.ConnectionState == ZaichikConnectionState.Connected;
            },
            "the client reconnects once its backoff has passed");
        (await client.PublishAsync("no-retention", "after")).Sequence.ShouldBe(5);
        (await enumerator.MoveNextAsync()).ShouldBeTrue();
        enumerator.Current.Sequence.ShouldBe(5);
        gaps.ShouldHaveSingleItem().ShouldBe(new ZaichikSubscriptionGap("no-retention", 2, 4));
    }

    [Fact]
    public async Task A_durable_consumer_resumes_after_its_last_commit_and_sees_each_message_once()
    {
        await using var server = await TestServer.StartAsync();
        await using var client = await ZaichikClient.ConnectAsync(Fast(server.Port));
        await using var subscription = await client.SubscribeAsync("billing", new SubscribeOptions { DurableName = "billing", Prefetch = 5 });
        using var reading = new CancellationTokenSource(Patience);
        await using var enumerator = subscription.GetAsyncEnumerator(reading.Token);
        for (var i = 0; i < 10; i++)
        {
            await client.PublishAsync("billing", $"m{i}");
        }

        var seen = new List<long>();
        while (seen.Count < 3 && await enumerator.MoveNextAsync())
        {
            seen.Add(enumerator.Current.Sequence);
            await client.CommitAsync(enumerator.Current);
        }

        await client.ConfirmCommitsAsync();
        await server.StopAsync();
        await server.StartAgainAsync();
        while (seen.Count < 10 && await enumerator.MoveNextAsync())
        {
            seen.Add(enumerator.Current.Sequence);
            await client.CommitAsync(enumerator.Current);
        }

        seen.ShouldBe(Enumerable.Range(1, 10).Select(i => (long)i), "each message once: the client drops redeliveries it already has");
        await client.ConfirmCommitsAsync();
        await client.UnsubscribeAsync("billing");
        await using var later = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port);
        await using var resumed = await later.SubscribeAsync("billing", new SubscribeOptions { DurableName = "billing" });
        resumed.StartSequence.ShouldBe(11, "every message was committed, also those delivered again after the restart");
    }

    [Fact]
    public async Task A_publish_whose_Ack_was_lost_is_sent_again_and_stored_once()
    {
        await using var server = await TestServer.StartAsync();
        await using var proxy = new LossyProxy(server.Port);
        await using var client = await ZaichikClient.ConnectAsync(Fast(proxy.Port));
        await using var observer = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port);
        await client.CreateTopicAsync("lost-acks", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        await using var watching = await observer.SubscribeAsync("lost-acks", new SubscribeOptions { Prefetch = 1000, AutoCommit = true });

        proxy.SwallowReplies();
        var publishes = Enumerable.Range(0, 100).Select(i => client.PublishAsync("lost-acks", $"m{i}").AsTask()).ToArray();
        var stored = await ReadAsync(watching, 100);
        publishes.ShouldAllBe(p => !p.IsCompleted, "the broker stored them, but no Ack arrived");

        proxy.CutAll();
        var results = await Task.WhenAll(publishes).WaitAsync(Patience);

        results.Select(r => r.Sequence).ShouldBe(stored.Select(m => m.Sequence), "each resent publish got its original's Ack");
        results.ShouldAllBe(r => !r.Duplicate);
        (await client.PublishAsync("lost-acks", "next")).Sequence.ShouldBe(101, "nothing was stored twice");
        proxy.Connections.ShouldBe(2);
    }

    [Fact]
    public async Task Without_idempotence_a_publish_whose_Ack_was_lost_fails_instead_of_being_sent_again()
    {
        await using var server = await TestServer.StartAsync();
        await using var proxy = new LossyProxy(server.Port);
        await using var client = await ZaichikClient.ConnectAsync(Fast(proxy.Port) with { Idempotence = false });
        await using var observer = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port);
        await using var watching = await observer.SubscribeAsync("unsure", new SubscribeOptions { Prefetch = 100, AutoCommit = true });
        proxy.SwallowReplies();
        var publishing = client.PublishAsync("unsure", "maybe").AsTask();
        await ReadAsync(watching, 1);

        proxy.CutAll();

        var error = await Should.ThrowAsync<ZaichikConnectionException>(publishing.WaitAsync(Patience));
        error.Message.ShouldContain("whether the server handled it is unknown");
        (await client.PublishAsync("unsure", "after")).Sequence.ShouldBe(2);
    }

    [Fact]
    public async Task A_client_made_with_Create_connects_when_the_broker_comes_up()
    {
        await using var server = await TestServer.StartAsync();
        var port = server.Port;
        await server.StopAsync();
        await using var client = ZaichikClient.Create(Fast(port));
        client.ConnectionState.ShouldBeOneOf(ZaichikConnectionState.Connecting);
        var publishing = client.PublishAsync("late", "hello").AsTask();

        await server.StartAgainAsync();

        (await publishing.WaitAsync(Patience)).Sequence.ShouldBe(1);
        client.ConnectionState.ShouldBe(ZaichikConnectionState.Connected);
    }

    [Fact]
    public async Task The_client_gives_up_after_MaxAttempts_and_fails_what_waits()
    {
        await using var server = await TestServer.StartAsync();
        await using var client = await ZaichikClient.ConnectAsync(Fast(server.Port) with
        {
            Reconnect = new() { MinDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(20), MaxAttempts = 3 },
        });
        await server.StopAsync();
        var publishing = client.PublishAsync("gone", "never").AsTask();

        var error = await Should.ThrowAsync<ZaichikConnectionException>(publishing.WaitAsync(Patience));

        error.Message.ShouldContain("after 3 attempts");
        client.ConnectionState.ShouldBe(ZaichikConnectionState.Closed);
        await Should.ThrowAsync<ZaichikConnectionException>(async () => await client.PublishAsync("gone", "later"));
        await server.StartAgainAsync();
    }

    [Fact]
    public async Task A_call_waits_for_the_connection_no_longer_than_RequestTimeout()
    {
        await using var server = await TestServer.StartAsync();
        await using var client = await ZaichikClient.ConnectAsync(Fast(server.Port) with { RequestTimeout = TimeSpan.FromMilliseconds(300) });
        await server.StopAsync();

        await Should.ThrowAsync<ZaichikTimeoutException>(client.PublishAsync("slow", "x").AsTask().WaitAsync(Patience));
        await Should.ThrowAsync<ZaichikTimeoutException>(client.CommitAsync("slow", 1).AsTask().WaitAsync(Patience));
        client.ConnectionState.ShouldBe(ZaichikConnectionState.Reconnecting);
        await server.StartAgainAsync();
    }

    [Fact]
    public async Task Disposing_while_reconnecting_stops_the_attempts_and_fails_what_waits()
    {
        await using var server = await TestServer.StartAsync();
        var client = await ZaichikClient.ConnectAsync(Fast(server.Port));
        await server.StopAsync();
        var publishing = client.PublishAsync("closing", "x").AsTask();

        await client.DisposeAsync().AsTask().WaitAsync(Patience);

        (await Should.ThrowAsync<ZaichikConnectionException>(publishing.WaitAsync(Patience))).Message.ShouldBe("connection closed");
        client.ConnectionState.ShouldBe(ZaichikConnectionState.Closed);
        await server.StartAgainAsync();
    }

    [Fact]
    public void Reconnect_options_are_validated_with_the_option_named()
    {
        Should.Throw<ArgumentOutOfRangeException>(() => ZaichikClient.Create(new ZaichikClientOptions
        {
            Reconnect = new() { MinDelay = TimeSpan.FromSeconds(10), MaxDelay = TimeSpan.FromSeconds(1) },
        })).ParamName.ShouldBe("Reconnect:MaxDelay");
        Should.Throw<ArgumentOutOfRangeException>(() => ZaichikClient.Create(new ZaichikClientOptions { Reconnect = new() { MaxAttempts = -1 } }))
            .ParamName.ShouldBe("Reconnect:MaxAttempts");
        Should.Throw<ArgumentOutOfRangeException>(() => ZaichikClient.Create(new ZaichikClientOptions { Port = 0 })).ParamName.ShouldBe("Port");
    }

    [Fact]
    public void Backoff_grows_exponentially_with_jitter_up_to_MaxDelay()
    {
        var options = new ZaichikReconnectOptions { MinDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromSeconds(2) };
        var random = new Random(7);
        for (var round = 0; round < 100; round++)
        {
            options.DelayBefore(1, random).ShouldBeInRange(TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(100));
            options.DelayBefore(3, random).ShouldBeInRange(TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(400));
            options.DelayBefore(30, random).ShouldBeInRange(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2));
        }
    }

    /// <summary>The next <paramref name="count"/> messages of <paramref name="subscription"/>; fails when they do not arrive in time.</summary>
    internal static async Task<List<ZaichikMessage>> ReadAsync(ZaichikSubscription subscription, int count, TimeSpan? patience = null)
    {
        var wait = patience ?? Patience;
        var messages = new List<ZaichikMessage>();
        using var deadline = new CancellationTokenSource(wait);
        await foreach (var message in subscription.WithCancellation(deadline.Token))
        {
            messages.Add(message);
            if (messages.Count == count)
            {
                break;
            }
        }

        messages.Count.ShouldBe(count, $"{count} messages within {wait.TotalSeconds} s");
        return messages;
    }
}
