using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Tests.Client;

namespace Zaichik.Tests.EndToEnd;

/// <summary>Consumer groups: members share a topic's messages, with ack timeouts, Nack, MaxDeliver and dead letters, across restarts.</summary>
public sealed class ConsumerGroupTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private static readonly TopicOptions Retained = new() { RetentionTtl = TimeSpan.FromHours(1) };

    [Fact]
    public async Task Three_members_share_30000_messages_with_none_delivered_twice()
    {
        await using var server = await TestServer.StartAsync();
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync("orders", Retained);
        await PublishAsync(publisher, "orders", 30_000);

        var received = new ConcurrentBag<ZaichikMessage>();
        var members = new List<Task<int>>();
        using var done = new CancellationTokenSource(Patience);
        for (var m = 0; m < 3; m++)
        {
            var client = await server.ConnectAsync();
            var subscription = await client.SubscribeAsync("orders", new SubscribeOptions { Group = "billing", Prefetch = 64 });
            members.Add(ConsumeAsync(client, subscription, received, () => received.Count >= 30_000, done));
        }

        var counts = await Task.WhenAll(members);

        var sequences = received.Select(message => message.Sequence).Order().ToList();
        sequences.ShouldBe(Enumerable.Range(1, 30_000).Select(sequence => (long)sequence), "every message exactly once");

        // 30,000 deliveries within one AckWait: the timer queue keeps no entry of every committed one.
        server.Registry.TryGet("orders", out var topic).ShouldBeTrue();
        topic.Current!.Groups["billing"].TimerEntries.ShouldBeLessThan(3 * 64 * 3 + 1_100);
        received.ShouldAllBe(message => message.DeliveryCount == 1);
        counts.ShouldAllBe(count => count > 1_000, "every member took a share: " + string.Join(", ", counts));
    }

    [Fact]
    public async Task A_member_that_dies_mid_stream_has_its_in_flight_messages_delivered_to_the_others()
    {
        await using var server = await TestServer.StartAsync();
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync("jobs", Retained);
        await PublishAsync(publisher, "jobs", 3_000);

        // The doomed member takes its prefetch's worth and never commits; then its connection drops.
        var doomed = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port, new ZaichikClientOptions { Reconnect = new ZaichikReconnectOptions { Enabled = false } });
        var doomedSubscription = await doomed.SubscribeAsync("jobs", new SubscribeOptions { Group = "workers", Prefetch = 50 });
        var taken = await ReconnectTests.ReadAsync(doomedSubscription, 50);

        var received = new ConcurrentBag<ZaichikMessage>();
        using var done = new CancellationTokenSource(Patience);
        var survivors = new List<Task<int>>();
        for (var m = 0; m < 2; m++)
        {
            var client = await server.ConnectAsync();
            var subscription = await client.SubscribeAsync("jobs", new SubscribeOptions { Group = "workers", Prefetch = 20 });
            survivors.Add(ConsumeAsync(client, subscription, received, () => received.Count >= 3_000 - 0, done));
        }

        await doomed.DisposeAsync();
        await Task.WhenAll(survivors);

        received.Select(message => message.Sequence).Order().ShouldBe(Enumerable.Range(1, 3_000).Select(sequence => (long)sequence), "none lost, none twice");
        var redelivered = received.Where(message => message.DeliveryCount == 2).Select(message => message.Sequence).Order().ToList();
        redelivered.ShouldBe(taken.Select(message => message.Sequence).Order().ToList(), "exactly the dead member's messages came again, counted");
    }

    [Fact]
    public async Task Messages_of_one_key_reach_one_member_in_sequence_order()
    {
        await using var server = await TestServer.StartAsync();
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync("accounts", Retained);
        var byMember = new ConcurrentDictionary<int, ConcurrentQueue<ZaichikMessage>>();
        var received = new ConcurrentBag<ZaichikMessage>();
        using var done = new CancellationTokenSource(Patience);
        var members = new List<Task<int>>();
        for (var m = 0; m < 3; m++)
        {
            var client = await server.ConnectAsync();
            var subscription = await client.SubscribeAsync("accounts", new SubscribeOptions { Group = "ledger", Prefetch = 8 });
            var queue = byMember.GetOrAdd(m, _ => new ConcurrentQueue<ZaichikMessage>());
            members.Add(ConsumeAsync(client, subscription, received, () => received.Count >= 2_000, done, queue.Enqueue));
        }

        await TestServer.EventuallyAsync(() => GroupView(server, "accounts", "ledger")?.Members == 3, "all three joined");
        for (var i = 0; i < 2_000; i++)
        {
            await publisher.PublishAsync("accounts", $"{i}", key: $"account-{i % 16}");
        }

        await Task.WhenAll(members);

        received.Count.ShouldBe(2_000);
        var owners = new Dictionary<string, int>();
        foreach (var (member, queue) in byMember)
        {
            foreach (var group in queue.GroupBy(message => message.KeyText!))
            {
                owners.TryAdd(group.Key, member).ShouldBeTrue($"key {group.Key} went to one member only");
                var sequences = group.Select(message => message.Sequence).ToList();
                sequences.ShouldBe(sequences.Order().ToList(), $"key {group.Key} in sequence order");
            }
        }

        owners.Count.ShouldBe(16);
        owners.Values.Distinct().Count().ShouldBeGreaterThan(1, "keys are spread over the members");
    }

    [Fact]
    public async Task A_delivery_not_committed_within_AckWait_comes_again_to_another_member_with_its_count()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(time: time);
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync("tasks", Retained);
        await publisher.PublishAsync("tasks", "only");

        var options = new SubscribeOptions { Group = "g", AckWait = TimeSpan.FromSeconds(10) };
        var first = await server.ConnectAsync();
        var firstSubscription = await first.SubscribeAsync("tasks", options);
        var delivered = (await ReconnectTests.ReadAsync(firstSubscription, 1))[0];
        delivered.DeliveryCount.ShouldBe(1);

        var second = await server.ConnectAsync();
        var secondSubscription = await second.SubscribeAsync("tasks", options);
        await TestServer.EventuallyAsync(() => GroupView(server, "tasks", "g")?.Members == 2, "both members joined");

        // A member receives once its connection has handled the read its Subscribe came in (it is started after the
        // Ack is written): a Pong after it says it has. Without this the redelivery could find the first member the
        // only one with room and go back to it.
        await second.ConfirmCommitsAsync();

        time.Advance(TimeSpan.FromSeconds(9));
        GroupView(server, "tasks", "g")!.Redelivered.ShouldBe(0, "not before AckWait");

        time.Advance(TimeSpan.FromSeconds(2));
        var again = (await ReconnectTests.ReadAsync(secondSubscription, 1))[0];
        again.Sequence.ShouldBe(delivered.Sequence);
        again.DeliveryCount.ShouldBe(2);

        // The late commit of the first member still counts: the message is done.
        await second.CommitAsync(again);
        await TestServer.EventuallyAsync(() => GroupView(server, "tasks", "g")?.Pending == 0, "the redelivery was committed");
    }

    [Fact]
    public async Task A_message_given_back_without_a_delay_comes_again_before_any_new_one()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("retry", Retained);
        await PublishAsync(client, "retry", 400);

        // Each message is nacked at its first delivery and committed at its second: with the window freed by the Nack,
        // the new message and the given-back one race unless redeliveries go first. Publishes meanwhile keep waking the
        // group's pump, so that Nacks often arrive while it is between taking what is due and staging new messages.
        var subscription = await client.SubscribeAsync("retry", new SubscribeOptions { Group = "workers", Prefetch = 1 });
        var publisher = await server.ConnectAsync();
        using var stop = new CancellationTokenSource();
        var publishing = Task.Run(async () =>
        {
            for (var i = 0; i < 100_000 && !stop.IsCancellationRequested; i++)
            {
                await publisher.PublishAsync("retry", $"more {i}");
            }
        });
        var deliveries = new List<string>();
        for (var i = 0; i < 800; i++)
        {
            var message = (await ReconnectTests.ReadAsync(subscription, 1))[0];
            deliveries.Add($"{message.Sequence}/{message.DeliveryCount}");
            if (message.DeliveryCount == 1)
            {
                await client.NackAsync(message);
            }
            else
            {
                await client.CommitAsync(message);
            }
        }

        await stop.CancelAsync();
        await publishing;
        deliveries.ShouldBe(Enumerable.Range(1, 400).SelectMany(sequence => new[] { $"{sequence}/1", $"{sequence}/2" }));
    }

    [Fact]
    public async Task Nack_with_a_delay_redelivers_after_the_delay_and_lets_the_next_message_come_meanwhile()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(time: time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("mail", Retained);
        await client.PublishAsync("mail", "one");
        await client.PublishAsync("mail", "two");

        var subscription = await client.SubscribeAsync("mail", new SubscribeOptions { Group = "senders", Prefetch = 1 });
        var one = (await ReconnectTests.ReadAsync(subscription, 1))[0];
        one.PayloadText.ShouldBe("one");
        await client.NackAsync(one, TimeSpan.FromSeconds(5));

        var two = (await ReconnectTests.ReadAsync(subscription, 1))[0];
        two.PayloadText.ShouldBe("two", "the window freed by the Nack takes the next message");
        await client.CommitAsync(two);

        time.Advance(TimeSpan.FromSeconds(4));
        await TestServer.EventuallyAsync(() => GroupView(server, "mail", "senders")?.Pending == 1, "one is waiting");
        GroupView(server, "mail", "senders")!.Redelivered.ShouldBe(0);

        time.Advance(TimeSpan.FromSeconds(1));
        var again = (await ReconnectTests.ReadAsync(subscription, 1))[0];
        again.PayloadText.ShouldBe("one");
        again.DeliveryCount.ShouldBe(2);
    }

    [Fact]
    public async Task A_poison_message_goes_to_the_dead_letter_topic_after_MaxDeliver_with_headers_naming_its_origin()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("payments", Retained);
        await client.CreateTopicAsync("payments.dead", Retained);
        var headers = new ZaichikHeaders();
        headers.Add("tenant", "acme");
        await client.PublishAsync("payments", "poison", "p-1", headers);
        await client.PublishAsync("payments", "fine");

        var subscription = await client.SubscribeAsync("payments", new SubscribeOptions { Group = "charger", MaxDeliver = 3, DeadLetterTopic = "payments.dead" });
        for (var delivery = 1; delivery <= 3; delivery++)
        {
            var poison = (await ReconnectTests.ReadAsync(subscription, 1))[0];
            poison.PayloadText.ShouldBe("poison");
            poison.DeliveryCount.ShouldBe(delivery);
            await client.NackAsync(poison);
        }

        var next = (await ReconnectTests.ReadAsync(subscription, 1))[0];
        next.PayloadText.ShouldBe("fine", "after the third delivery the poison message left the group");
        next.DeliveryCount.ShouldBe(1);
        await client.CommitAsync(next);

        var reader = await server.ConnectAsync();
        var deadLetters = await reader.SubscribeAsync("payments.dead", new SubscribeOptions { AckPolicy = AckPolicy.None });
        var dead = (await ReconnectTests.ReadAsync(deadLetters, 1))[0];
        dead.PayloadText.ShouldBe("poison");
        dead.KeyText.ShouldBe("p-1");
        dead.Headers.GetText("tenant").ShouldBe("acme");
        dead.Headers.GetText("zaichik-dead-letter-topic").ShouldBe("payments");
        dead.Headers.GetText("zaichik-dead-letter-sequence").ShouldBe("1");
        dead.Headers.GetText("zaichik-delivery-count").ShouldBe("3");
        dead.Headers.GetText("zaichik-dead-letter-group").ShouldBe("charger");

        await TestServer.EventuallyAsync(() => GroupView(server, "payments", "charger") is { Pending: 0, DeadLettered: 1 }, "counted as done");
    }

    [Fact]
    public async Task Unkeyed_dead_letters_stay_unkeyed_and_a_key_window_on_the_dead_letter_topic_keeps_them_all()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("jobs", Retained);
        await client.CreateTopicAsync("jobs.dead", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1), CompactionWindow = TimeSpan.FromHours(1) });
        await client.PublishAsync("jobs", "first");
        await client.PublishAsync("jobs", "second");

        var subscription = await client.SubscribeAsync("jobs", new SubscribeOptions { Group = "workers", MaxDeliver = 1, DeadLetterTopic = "jobs.dead" });
        for (var i = 0; i < 2; i++)
        {
            await client.NackAsync((await ReconnectTests.ReadAsync(subscription, 1))[0]);
        }

        await TestServer.EventuallyAsync(() => GroupView(server, "jobs", "workers") is { DeadLettered: 2 }, "both dead-lettered");
        var reader = await server.ConnectAsync();
        var deadLetters = await reader.SubscribeAsync("jobs.dead", new SubscribeOptions { AckPolicy = AckPolicy.None });
        var dead = await ReconnectTests.ReadAsync(deadLetters, 2);
        dead.Select(message => message.PayloadText).ShouldBe(["first", "second"]);
        dead.ShouldAllBe(message => !message.Key.HasValue, "an unkeyed message stays unkeyed when it is dead-lettered");
    }

    [Fact]
    public async Task Individual_commits_out_of_order_and_delivery_counts_survive_a_restart()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("ledger", Retained);
        await PublishAsync(client, "ledger", 10);

        var subscription = await client.SubscribeAsync("ledger", new SubscribeOptions { Group = "audit", Prefetch = 5 });
        var firstFive = await ReconnectTests.ReadAsync(subscription, 5);
        foreach (var message in firstFive.Where(message => message.Sequence != 2))
        {
            await client.CommitAsync(message);
        }

        await ReconnectTests.ReadAsync(subscription, 4);
        await client.ConfirmCommitsAsync();

        await server.RestartAsync();

        var again = await server.ConnectAsync();
        var resumed = await again.SubscribeAsync("ledger", new SubscribeOptions { Group = "audit", Prefetch = 10 });
        var after = await ReconnectTests.ReadAsync(resumed, 6);
        after.Select(message => message.Sequence).Order().ShouldBe([2L, 6, 7, 8, 9, 10]);
        after.Single(message => message.Sequence == 2).DeliveryCount.ShouldBe(2);
        after.Where(message => message.Sequence >= 6 && message.Sequence <= 9).ShouldAllBe(message => message.DeliveryCount == 2);
        after.Single(message => message.Sequence == 10).DeliveryCount.ShouldBe(1);
    }

    [Fact]
    public async Task A_group_member_alone_is_a_consumer_with_redelivery_and_its_group_resumes_after_all_members_left()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("events", Retained);
        await PublishAsync(client, "events", 20);

        var subscription = await client.SubscribeAsync("events", new SubscribeOptions { Group = "solo", Prefetch = 10, AutoCommit = true });
        var first = await ReconnectTests.ReadAsync(subscription, 11);
        await subscription.DisposeAsync();

        // Message 11 was read but not committed (auto-commit commits on the next read): it comes first with the rest.
        var again = await client.SubscribeAsync("events", new SubscribeOptions { Group = "solo", Prefetch = 10 });
        var rest = await ReconnectTests.ReadAsync(again, 10);
        first.Select(message => message.Sequence).ShouldBe(Enumerable.Range(1, 11).Select(sequence => (long)sequence));
        rest.Select(message => message.Sequence).ShouldBe(Enumerable.Range(11, 10).Select(sequence => (long)sequence));
    }

    [Fact]
    public async Task MaxDeliver_counts_deliveries_made_before_a_restart_and_the_dead_letter_follows_after_it()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("imports", Retained);
        await client.PublishAsync("imports", "bad row");

        var options = new SubscribeOptions { Group = "loader", MaxDeliver = 2, DeadLetterTopic = "imports.dead" };
        var subscription = await client.SubscribeAsync("imports", options);
        (await ReconnectTests.ReadAsync(subscription, 1))[0].DeliveryCount.ShouldBe(1);
        await client.ConfirmCommitsAsync();

        await server.RestartAsync();

        var again = await server.ConnectAsync();
        var resumed = await again.SubscribeAsync("imports", options);
        var second = (await ReconnectTests.ReadAsync(resumed, 1))[0];
        second.PayloadText.ShouldBe("bad row");
        second.DeliveryCount.ShouldBe(2, "the delivery before the restart counts");
        await again.NackAsync(second);

        // Created by the group, the dead-letter topic retains: a reader that comes later still finds the dead letter.
        await TestServer.EventuallyAsync(() => GroupView(server, "imports", "loader") is { DeadLettered: 1 }, "dead-lettered");
        server.Registry.TryGet("imports.dead", out var deadTopic).ShouldBeTrue();
        deadTopic.Settings.RetentionTtlMs.ShouldBe((long)server.Options.DeadLetterRetention.TotalMilliseconds);
        var deadLetters = await again.SubscribeAsync("imports.dead", new SubscribeOptions { AckPolicy = AckPolicy.None });
        var dead = (await ReconnectTests.ReadAsync(deadLetters, 1))[0];
        dead.Headers.GetText("zaichik-delivery-count").ShouldBe("2");
        dead.Headers.GetText("zaichik-dead-letter-sequence").ShouldBe("1");
    }

    [Fact]
    public async Task A_member_whose_client_reconnects_after_a_broker_restart_rejoins_its_group_and_loses_nothing()
    {
        await using var server = await TestServer.StartAsync();
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync("feed", Retained);
        await PublishAsync(publisher, "feed", 100);

        await using var member = await ZaichikClient.ConnectAsync(new ZaichikClientOptions
        {
            Host = "127.0.0.1",
            Port = server.Port,
            Reconnect = new() { MinDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(100) },
        });
        var subscription = await member.SubscribeAsync("feed", new SubscribeOptions { Group = "readers", Prefetch = 10 });
        using var reading = new CancellationTokenSource(Patience);
        await using var enumerator = subscription.GetAsyncEnumerator(reading.Token);
        var committed = new HashSet<long>();
        while (committed.Count < 40 && await enumerator.MoveNextAsync())
        {
            await member.CommitAsync(enumerator.Current);
            committed.Add(enumerator.Current.Sequence);
        }

        await member.ConfirmCommitsAsync();
        await server.StopAsync();
        await server.StartAgainAsync();

        var afterRestart = new List<ZaichikMessage>();
        while (committed.Count < 100 && await enumerator.MoveNextAsync())
        {
            afterRestart.Add(enumerator.Current);
            await member.CommitAsync(enumerator.Current);
            committed.Add(enumerator.Current.Sequence);
        }

        committed.Order().ShouldBe(Enumerable.Range(1, 100).Select(sequence => (long)sequence));
        afterRestart.ShouldNotContain(message => message.Sequence <= 40 && message.DeliveryCount == 1, "nothing committed before the restart came as new");
    }

    [Fact]
    public async Task A_group_on_a_topic_keeping_the_latest_value_per_key_gets_each_keys_newest_value()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("prices", new TopicOptions { KeepLatestPerKey = true });
        await client.PublishAsync("prices", "a1", "a");
        await client.PublishAsync("prices", "b1", "b");
        await client.PublishAsync("prices", "a2", "a");
        await client.PublishAsync("prices", "a3", "a");

        var subscription = await client.SubscribeAsync("prices", new SubscribeOptions { Group = "pricing", Prefetch = 10 });
        var latest = await ReconnectTests.ReadAsync(subscription, 2);
        latest.Select(message => message.PayloadText).ShouldBe(["b1", "a3"]);
        foreach (var message in latest)
        {
            await client.CommitAsync(message);
        }

        await TestServer.EventuallyAsync(() => GroupView(server, "prices", "pricing") is { Pending: 0, DoneSequence: 4 }, "done up to a3");
    }

    [Fact]
    public async Task AckWait_on_an_ordinary_subscription_redelivers_on_its_own_connection_and_MaxDeliver_dead_letters()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(time: time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("alerts", Retained);
        await client.PublishAsync("alerts", "disk full");
        await client.PublishAsync("alerts", "cpu hot");

        var subscription = await client.SubscribeAsync("alerts", new SubscribeOptions
        {
            Prefetch = 2, AckWait = TimeSpan.FromSeconds(5), MaxDeliver = 2, DeadLetterTopic = "alerts.dead",
        });
        var first = await ReconnectTests.ReadAsync(subscription, 2);
        first.Select(message => message.DeliveryCount).ShouldBe([1, 1]);
        await client.CommitAsync(first[1]);

        time.Advance(TimeSpan.FromSeconds(5));
        var again = (await ReconnectTests.ReadAsync(subscription, 1))[0];
        again.PayloadText.ShouldBe("disk full");
        again.DeliveryCount.ShouldBe(2, "not committed within AckWait: delivered again on the same subscription");

        time.Advance(TimeSpan.FromSeconds(5));
        var reader = await server.ConnectAsync();
        var deadLetters = await reader.SubscribeAsync("alerts.dead", new SubscribeOptions { AckPolicy = AckPolicy.None });
        (await ReconnectTests.ReadAsync(deadLetters, 1))[0].Headers.GetText("zaichik-delivery-count").ShouldBe("2");
        server.State.Groups("alerts").ShouldBeEmpty("a subscription's own redelivery is not a group anyone can join");
        server.State.Connections().SelectMany(connection => connection.Subscriptions).Single(view => view.Topic == "alerts").Group.ShouldBeNull();
    }

    [Fact]
    public async Task A_durable_name_with_redelivery_settings_or_a_group_and_a_bad_group_name_are_refused()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();

        await Should.ThrowAsync<ArgumentException>(async () => await client.SubscribeAsync("t", new SubscribeOptions { MaxDeliver = 3, DurableName = "d" }));
        await Should.ThrowAsync<ArgumentException>(async () => await client.SubscribeAsync("t", new SubscribeOptions { Group = "g", DurableName = "d" }));
        await Should.ThrowAsync<ArgumentException>(async () => await client.SubscribeAsync("t", new SubscribeOptions { Group = "g", AckPolicy = AckPolicy.None }));
        await Should.ThrowAsync<ArgumentException>(async () => await client.SubscribeAsync("t", new SubscribeOptions { Group = "bad name" }));

        await using var raw = await RawConnection.ConnectAsync(server.Port);
        await raw.SendAsync(writer => FrameWriter.Write(writer, new SubscribeFrame(7, "t", StartPosition.Retained, 1, Group: "g", DeadLetterTopic: "t")));
        var error = (await raw.ReceiveAsync()).Error!.Value;
        error.Code.ShouldBe(ErrorCode.InvalidArgument);
        error.Text.ShouldContain("dead-letter");
        await raw.SendAsync(writer => FrameWriter.Write(writer, new SubscribeFrame(8, "t", StartPosition.Retained, 1, DurableName: "d", MaxDeliver: 2)));
        (await raw.ReceiveAsync()).Error!.Value.Code.ShouldBe(ErrorCode.InvalidArgument);
        await raw.SendAsync(writer => FrameWriter.Write(writer, new SubscribeFrame(9, "t", StartPosition.Retained, 1, DurableName: "d", Group: "g")));
        (await raw.ReceiveAsync()).Error!.Value.Code.ShouldBe(ErrorCode.InvalidArgument);
    }

    private static Zaichik.Server.State.GroupView? GroupView(TestServer server, string topic, string group) =>
        server.State.Groups(topic).SingleOrDefault(view => view.Name == group);

    /// <summary>Publishes <paramref name="count"/> messages "m1".."mN", a thousand in flight at a time.</summary>
    internal static async Task PublishAsync(ZaichikClient client, string topic, int count)
    {
        var pending = new List<Task>(1_000);
        for (var i = 1; i <= count; i++)
        {
            pending.Add(client.PublishAsync(topic, $"m{i}").AsTask());
            if (pending.Count == 1_000)
            {
                await Task.WhenAll(pending);
                pending.Clear();
            }
        }

        await Task.WhenAll(pending);
    }

    /// <summary>Reads and commits each message on its own until <paramref name="enough"/> holds; returns how many this member took.</summary>
    private static async Task<int> ConsumeAsync(
        ZaichikClient client, ZaichikSubscription subscription, ConcurrentBag<ZaichikMessage> received, Func<bool> enough, CancellationTokenSource done,
        Action<ZaichikMessage>? seen = null)
    {
        var count = 0;

        // Every member stops once every message has arrived somewhere (or the patience runs out).
        await foreach (var message in subscription.WithCancellation(done.Token))
        {
            received.Add(message);
            seen?.Invoke(message);
            count++;
            await client.CommitAsync(message, CancellationToken.None);
            if (enough())
            {
                await done.CancelAsync();
            }
        }

        return count;
    }
}
