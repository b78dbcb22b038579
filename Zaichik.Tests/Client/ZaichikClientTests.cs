using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Tests.Client;

public sealed class ZaichikClientTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Connecting_to_a_port_nobody_listens_on_throws_ZaichikConnectionException_naming_the_address()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var error = await Should.ThrowAsync<ZaichikConnectionException>(
            async () => await ZaichikClient.ConnectAsync("127.0.0.1", port).AsTask().WaitAsync(Patience));

        error.Message.ShouldStartWith($"could not connect to Zaichik at 127.0.0.1:{port}: ");
    }

    [Fact]
    public async Task Hello_answered_with_Error_throws_ZaichikServerException_with_its_code()
    {
        await using var server = new FakeServer(refuseHello: new ErrorFrame(null, ErrorCode.UnsupportedVersion, "version 1 is not served"));

        var connecting = ZaichikClient.ConnectAsync("127.0.0.1", server.Port).AsTask();
        await server.AcceptAsync();
        server.LastClientHello!.Value.Version.ShouldBe(ProtocolVersion.Current);

        // UnsupportedVersion: the client tries once more with the oldest version it speaks, which is refused as well.
        await server.AcceptAsync();
        server.LastClientHello!.Value.Version.ShouldBe(ProtocolVersion.Minimum);
        var error = await Should.ThrowAsync<ZaichikServerException>(connecting.WaitAsync(Patience));
        error.Code.ShouldBe(ErrorCode.UnsupportedVersion);
        error.Message.ShouldContain("version 1 is not served");
    }

    [Fact]
    public async Task Publish_returns_the_sequence_and_duplicate_flag_of_its_Ack()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);

        var publishing = pair.Client.PublishAsync("orders", "payload", "k1").AsTask();
        var publish = await pair.Server.ReceiveAsync<PublishFrame>();
        await pair.Server.SendAsync(new AckFrame(publish.RequestId, 4242, Duplicate: true));

        var result = await publishing.WaitAsync(Patience);
        result.ShouldBe(new PublishResult(4242, Duplicate: true));
        publish.Topic.ShouldBe("orders");
        Encoding.UTF8.GetString(publish.Payload.Span).ShouldBe("payload");
        Encoding.UTF8.GetString(publish.Key!.Value.Span).ShouldBe("k1");
    }

    [Fact]
    public async Task A_null_byte_array_key_publishes_an_unkeyed_message_and_an_empty_one_the_empty_key()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);
        byte[]? none = null;
        byte[] empty = [];

        var unkeyed = pair.Client.PublishAsync("orders", "x"u8.ToArray(), none).AsTask();
        var first = await pair.Server.ReceiveAsync<PublishFrame>();
        await pair.Server.SendAsync(new AckFrame(first.RequestId, 1, Duplicate: false));
        var withHeaders = pair.Client.PublishAsync("orders", "y"u8.ToArray(), none, new ZaichikHeaders().Add("h", "v")).AsTask();
        var second = await pair.Server.ReceiveAsync<PublishFrame>();
        await pair.Server.SendAsync(new AckFrame(second.RequestId, 2, Duplicate: false));
        var keyed = pair.Client.PublishAsync("orders", "z"u8.ToArray(), empty).AsTask();
        var third = await pair.Server.ReceiveAsync<PublishFrame>();
        await pair.Server.SendAsync(new AckFrame(third.RequestId, 3, Duplicate: false));
        await Task.WhenAll(unkeyed, withHeaders, keyed).WaitAsync(Patience);

        first.Key.HasValue.ShouldBeFalse("a null array is no key, not an empty one");
        second.Key.HasValue.ShouldBeFalse("a null array is no key, with headers too");
        third.Key.ShouldNotBeNull().Length.ShouldBe(0, "an empty array is the empty key");
    }

    [Fact]
    public async Task Publish_answered_with_Error_throws_ZaichikServerException_with_code_and_text()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);

        var publishing = pair.Client.PublishAsync("missing", "x").AsTask();
        var publish = await pair.Server.ReceiveAsync<PublishFrame>();
        await pair.Server.SendAsync(new ErrorFrame(publish.RequestId, ErrorCode.TopicNotFound, "topic 'missing' does not exist"));

        var error = await Should.ThrowAsync<ZaichikServerException>(publishing.WaitAsync(Patience));
        error.Code.ShouldBe(ErrorCode.TopicNotFound);
        error.ServerMessage.ShouldBe("topic 'missing' does not exist");
        error.Message.ShouldContain("TopicNotFound");
        pair.Client.IsConnected.ShouldBeTrue("a refused request must not end the connection");
    }

    [Fact]
    public async Task Concurrent_publishes_from_many_threads_each_get_their_own_ack_even_when_acked_out_of_order()
    {
        const int Count = 1000;
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);

        var publishing = Enumerable.Range(0, Count)
            .Select(i => Task.Run(async () => (Index: i, Result: await pair.Client.PublishAsync("load", i.ToString(CultureInfo.InvariantCulture)))))
            .ToArray();
        var frames = new List<PublishFrame>();
        for (var i = 0; i < Count; i++)
        {
            frames.Add(await pair.Server.ReceiveAsync<PublishFrame>());
        }

        // Answer newest first, the sequence telling which payload the ack belongs to.
        frames.Reverse();
        await pair.Server.SendAsync(frames.Select(f => new AckFrame(f.RequestId, 1_000_000 + long.Parse(Encoding.UTF8.GetString(f.Payload.Span), CultureInfo.InvariantCulture), false)));

        var results = await Task.WhenAll(publishing).WaitAsync(Patience);
        frames.Select(f => f.RequestId).Distinct().Count().ShouldBe(Count, "every publish needs its own request id");
        foreach (var (index, result) in results)
        {
            result.Sequence.ShouldBe(1_000_000 + index, $"publish {index} got another publish's ack");
        }
    }

    [Fact]
    public async Task Connection_drop_fails_pending_publishes_with_ZaichikConnectionException()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server, WithoutReconnect);

        var publishing = pair.Client.PublishAsync("orders", "x").AsTask();
        await pair.Server.ReceiveAsync<PublishFrame>();
        pair.Server.Drop();

        var error = await Should.ThrowAsync<ZaichikConnectionException>(publishing.WaitAsync(Patience));
        error.Message.ShouldContain("127.0.0.1");
        pair.Client.IsConnected.ShouldBeFalse();
        await Should.ThrowAsync<ZaichikConnectionException>(async () => await pair.Client.PublishAsync("orders", "after"));
    }

    [Fact]
    public async Task ConfirmCommitsAsync_sends_a_Ping_after_the_Commits_and_completes_at_its_own_Pong_only()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);

        await pair.Client.CommitAsync("ledger", 7);
        var confirming = pair.Client.ConfirmCommitsAsync();
        (await pair.Server.ReceiveAsync<CommitFrame>()).Sequence.ShouldBe(7);
        var ping = await pair.Server.ReceiveAsync<PingFrame>();

        await pair.Server.SendAsync(new PongFrame(ping.Nonce + 1000));
        await pair.Server.SendAsync(new PingFrame(55));
        (await pair.Server.ReceiveAsync<PongFrame>()).Nonce.ShouldBe(55UL, "the client reads in order, so it has read the other Pong by now");
        confirming.IsCompleted.ShouldBeFalse("a Pong to another Ping confirms nothing");
        await pair.Server.SendAsync(new PongFrame(ping.Nonce));
        await confirming.WaitAsync(Patience);
    }

    [Fact]
    public async Task ConfirmCommitsAsync_fails_with_the_CommitNotDurable_error_the_server_sends_right_before_the_Pong()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);

        var confirming = pair.Client.ConfirmCommitsAsync();
        var ping = await pair.Server.ReceiveAsync<PingFrame>();
        await pair.Server.SendAsync(new ErrorFrame(null, ErrorCode.CommitNotDurable, "Commits before Ping 1 are not on disk: no space"));
        await pair.Server.SendAsync(new PongFrame(ping.Nonce));

        var error = await Should.ThrowAsync<ZaichikServerException>(confirming.WaitAsync(Patience));
        error.Code.ShouldBe(ErrorCode.CommitNotDurable);
        error.Message.ShouldContain("no space");
        pair.Client.IsConnected.ShouldBeTrue();

        var again = pair.Client.ConfirmCommitsAsync();
        await pair.Server.SendAsync(new PongFrame((await pair.Server.ReceiveAsync<PingFrame>()).Nonce));
        await again.WaitAsync(Patience);
    }

    [Fact]
    public async Task ConfirmCommitsAsync_fails_when_the_connection_drops_or_no_Pong_comes_in_time()
    {
        await using var server = new FakeServer();
        var options = ZaichikClientOptions.Default with { RequestTimeout = TimeSpan.FromMilliseconds(200) };
        await using (var pair = await ConnectedPair.StartAsync(server, options))
        {
            var unanswered = pair.Client.ConfirmCommitsAsync();
            await pair.Server.ReceiveAsync<PingFrame>();
            await Should.ThrowAsync<ZaichikTimeoutException>(unanswered.WaitAsync(Patience));
        }

        await using var dropped = await ConnectedPair.StartAsync(server);
        var confirming = dropped.Client.ConfirmCommitsAsync();
        await dropped.Server.ReceiveAsync<PingFrame>();
        dropped.Server.Drop();
        await Should.ThrowAsync<ZaichikConnectionException>(confirming.WaitAsync(Patience));
    }

    [Fact]
    public async Task Request_without_an_answer_fails_with_ZaichikTimeoutException_after_RequestTimeout()
    {
        await using var server = new FakeServer();
        var options = ZaichikClientOptions.Default with { RequestTimeout = TimeSpan.FromMilliseconds(200) };
        await using var pair = await ConnectedPair.StartAsync(server, options);

        var publishing = pair.Client.PublishAsync("slow", "x").AsTask();
        await pair.Server.ReceiveAsync<PublishFrame>();

        var error = await Should.ThrowAsync<ZaichikTimeoutException>(publishing.WaitAsync(Patience));
        error.Message.ShouldContain("'slow'");
        pair.Client.IsConnected.ShouldBeTrue("a timed-out request must not end the connection");
    }

    [Fact]
    public async Task Publishes_beyond_MaxPendingRequests_wait_until_an_answer_frees_a_slot()
    {
        await using var server = new FakeServer();
        var options = ZaichikClientOptions.Default with { MaxPendingRequests = 2 };
        await using var pair = await ConnectedPair.StartAsync(server, options);

        var first = pair.Client.PublishAsync("t", "1").AsTask();
        var second = pair.Client.PublishAsync("t", "2").AsTask();
        var third = pair.Client.PublishAsync("t", "3").AsTask();
        var firstFrame = await pair.Server.ReceiveAsync<PublishFrame>();
        var secondFrame = await pair.Server.ReceiveAsync<PublishFrame>();

        (await pair.Server.SendsNothingWithinAsync(TimeSpan.FromMilliseconds(300))).ShouldBeTrue("a third request was sent while two were unanswered");
        third.IsCompleted.ShouldBeFalse();

        await pair.Server.SendAsync(new AckFrame(firstFrame.RequestId, 1, false));
        var thirdFrame = await pair.Server.ReceiveAsync<PublishFrame>();
        await pair.Server.SendAsync([new AckFrame(secondFrame.RequestId, 2, false), new AckFrame(thirdFrame.RequestId, 3, false)]);

        (await Task.WhenAll(first, second, third).WaitAsync(Patience)).Select(r => r.Sequence).ShouldBe([1L, 2L, 3L]);
    }

    [Fact]
    public async Task CreateTopic_sends_retention_and_compaction_as_whole_milliseconds()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);

        var creating = pair.Client.CreateTopicAsync("retained", new TopicOptions { RetentionTtl = TimeSpan.FromSeconds(10), CompactionWindow = TimeSpan.FromMilliseconds(1500.7) }).AsTask();
        var create = await pair.Server.ReceiveAsync<CreateTopicFrame>();
        await pair.Server.SendAsync(new AckFrame(create.RequestId, null, false));

        await creating.WaitAsync(Patience);
        create.ShouldBe(new CreateTopicFrame(create.RequestId, "retained", 10_000, 1500));
    }

    [Fact]
    public async Task Invalid_topic_name_throws_ArgumentException_without_sending_anything()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);

        var error = await Should.ThrowAsync<ArgumentException>(async () => await pair.Client.PublishAsync("no spaces", "x"));

        error.Message.ShouldContain("topic name contains ' '");
        (await pair.Server.SendsNothingWithinAsync(TimeSpan.FromMilliseconds(100))).ShouldBeTrue();
    }

    [Fact]
    public async Task Subscription_yields_delivered_messages_in_order_with_their_own_copies_of_key_and_payload()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);

        var subscription = await SubscribeAsync(pair, "news", SubscribeOptions.Default with { From = StartPosition.Latest, Prefetch = 10 });
        var timestamp = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123);
        await pair.Server.SendAsync(new MessageFrame("news", 100, timestamp.ToUnixTimeMilliseconds(), Encoding.UTF8.GetBytes("k"), Encoding.UTF8.GetBytes("first")));
        await pair.Server.SendAsync(new MessageFrame("news", 200, timestamp.ToUnixTimeMilliseconds(), null, Encoding.UTF8.GetBytes("second")));

        var received = await TakeAsync(subscription, 2);

        received.Select(m => (m.Topic, m.Sequence, m.KeyText, m.PayloadText)).ShouldBe([("news", 100L, "k", "first"), ("news", 200L, null, "second")]);
        received[0].Timestamp.ShouldBe(timestamp);
    }

    [Fact]
    public async Task Subscribe_sends_start_position_and_prefetch_and_completes_only_after_the_Ack()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);

        var subscribing = pair.Client.SubscribeAsync("news", new SubscribeOptions { From = StartPosition.Latest, Prefetch = 7 }).AsTask();
        var subscribe = await pair.Server.ReceiveAsync<SubscribeFrame>();
        subscribing.IsCompleted.ShouldBeFalse("SubscribeAsync must wait for the server's Ack");
        await pair.Server.SendAsync(new AckFrame(subscribe.RequestId, null, false));

        var subscription = await subscribing.WaitAsync(Patience);
        subscription.Topic.ShouldBe("news");
        subscribe.ShouldBe(new SubscribeFrame(subscribe.RequestId, "news", StartPosition.Latest, 7));
    }

    public static TheoryData<string> StartPositions() => ["Retained", "Latest", "Sequence(42)", "Time(2026-11-27T10:00:00.000Z)"];

    [Theory]
    [MemberData(nameof(StartPositions))]
    public async Task Subscribe_sends_the_start_position_of_its_options_kind_and_value(string text)
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);
        var from = text switch
        {
            "Retained" => StartPosition.Retained,
            "Latest" => StartPosition.Latest,
            "Sequence(42)" => StartPosition.Sequence(42),
            _ => StartPosition.Time(new DateTimeOffset(2026, 11, 27, 10, 0, 0, TimeSpan.Zero)),
        };

        var subscribing = pair.Client.SubscribeAsync("news", new SubscribeOptions { From = from }).AsTask();
        var subscribe = await pair.Server.ReceiveAsync<SubscribeFrame>();
        await pair.Server.SendAsync(new AckFrame(subscribe.RequestId, 1, false));
        await subscribing.WaitAsync(Patience);

        subscribe.From.ShouldBe(from, $"the Subscribe frame should start at {text}");
        subscribe.From.ToString().ShouldBe(text);
    }

    [Fact]
    public async Task Subscribe_Ack_sequence_becomes_the_subscription_StartSequence()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);

        var subscribing = pair.Client.SubscribeAsync("news", new SubscribeOptions { From = StartPosition.Sequence(42) }).AsTask();
        var subscribe = await pair.Server.ReceiveAsync<SubscribeFrame>();
        // 42 to 56 have expired: the first message the subscription can deliver is 57.
        await pair.Server.SendAsync(new AckFrame(subscribe.RequestId, 57, false));

        var subscription = await subscribing.WaitAsync(Patience);
        subscription.StartSequence.ShouldBe(57, "StartSequence is what the server's Ack says the subscription starts at, not what it asked for");
    }

    [Fact]
    public async Task Subscribe_Ack_without_a_sequence_leaves_StartSequence_at_minus_1()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);

        var subscribing = pair.Client.SubscribeAsync("news").AsTask();
        var subscribe = await pair.Server.ReceiveAsync<SubscribeFrame>();
        await pair.Server.SendAsync(new AckFrame(subscribe.RequestId, null, false));

        var subscription = await subscribing.WaitAsync(Patience);
        subscription.StartSequence.ShouldBe(-1, "an Ack without a sequence must not pass for sequence 0 or 1");
    }

    [Fact]
    public async Task Subscribe_with_an_undefined_start_position_kind_throws_without_sending_anything()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);
        var options = new SubscribeOptions { From = new StartPosition((StartPositionKind)4, 0) };

        var error = await Should.ThrowAsync<ArgumentOutOfRangeException>(async () => await pair.Client.SubscribeAsync("news", options));

        error.ParamName.ShouldBe("From");
        (await pair.Server.SendsNothingWithinAsync(TimeSpan.FromMilliseconds(100))).ShouldBeTrue("a Subscribe the server would find malformed must not be sent");
    }

    [Fact]
    public async Task Durable_subscription_refused_with_ConsumerPositionLost_throws_that_code_and_keeps_the_connection()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);

        var subscribing = pair.Client.SubscribeAsync("payments", new SubscribeOptions { DurableName = "billing" }).AsTask();
        var subscribe = await pair.Server.ReceiveAsync<SubscribeFrame>();
        await pair.Server.SendAsync(new ErrorFrame(subscribe.RequestId, ErrorCode.ConsumerPositionLost, "the stored position of 'billing' cannot be read"));

        var error = await Should.ThrowAsync<ZaichikServerException>(subscribing.WaitAsync(Patience));
        error.Code.ShouldBe(ErrorCode.ConsumerPositionLost);
        pair.Client.IsConnected.ShouldBeTrue("ConsumerPositionLost refuses the Subscribe, not the connection");
        var retrying = pair.Client.SubscribeAsync("payments", new SubscribeOptions { DurableName = "billing", From = StartPosition.Sequence(100) }).AsTask();
        var retry = await pair.Server.ReceiveAsync<SubscribeFrame>();
        retry.From.ShouldBe(StartPosition.Sequence(100), "the retry says where the consumer resumes");
        await pair.Server.SendAsync(new AckFrame(retry.RequestId, 100, false));
        (await retrying.WaitAsync(Patience)).StartSequence.ShouldBe(100);
    }

    [Fact]
    public async Task Second_subscription_to_the_same_topic_throws_AlreadySubscribed()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);
        await SubscribeAsync(pair, "news");

        var error = await Should.ThrowAsync<ZaichikServerException>(async () => await pair.Client.SubscribeAsync("news"));

        error.Code.ShouldBe(ErrorCode.AlreadySubscribed);
    }

    [Fact]
    public async Task Subscription_refused_by_the_server_throws_and_frees_the_topic()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);

        var subscribing = pair.Client.SubscribeAsync("missing").AsTask();
        var subscribe = await pair.Server.ReceiveAsync<SubscribeFrame>();
        await pair.Server.SendAsync(new ErrorFrame(subscribe.RequestId, ErrorCode.TopicNotFound, "no such topic"));
        (await Should.ThrowAsync<ZaichikServerException>(subscribing.WaitAsync(Patience))).Code.ShouldBe(ErrorCode.TopicNotFound);

        var retry = await SubscribeAsync(pair, "missing");
        retry.Topic.ShouldBe("missing");
    }

    [Fact]
    public async Task Enumeration_throws_ZaichikConnectionException_after_the_received_messages_when_the_connection_drops()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server, WithoutReconnect);
        var subscription = await SubscribeAsync(pair, "news");
        await pair.Server.SendAsync(new MessageFrame("news", 1, 0, null, Encoding.UTF8.GetBytes("before the drop")));
        var received = new List<string>();

        var reading = Task.Run(async () =>
        {
            await foreach (var message in subscription)
            {
                received.Add(message.PayloadText);
                pair.Server.Drop();
            }
        });

        await Should.ThrowAsync<ZaichikConnectionException>(reading.WaitAsync(Patience));
        received.ShouldBe(["before the drop"]);
    }

    [Fact]
    public async Task Cancelling_the_enumeration_token_ends_the_loop_without_an_exception()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);
        var subscription = await SubscribeAsync(pair, "quiet");
        using var cancel = new CancellationTokenSource();
        var count = 0;

        var reading = Task.Run(async () =>
        {
            await foreach (var message in subscription.WithCancellation(cancel.Token))
            {
                count++;
            }
        });
        await cancel.CancelAsync();

        await reading.WaitAsync(Patience);
        count.ShouldBe(0);
    }

    [Fact]
    public async Task AutoCommit_commits_each_message_when_the_consumer_asks_for_the_next()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);
        var subscription = await SubscribeAsync(pair, "jobs", new SubscribeOptions { AutoCommit = true });
        await pair.Server.SendAsync(new MessageFrame("jobs", 10, 0, null, Encoding.UTF8.GetBytes("a")));
        await using var messages = subscription.GetAsyncEnumerator();

        (await messages.MoveNextAsync().AsTask().WaitAsync(Patience)).ShouldBeTrue();
        (await pair.Server.SendsNothingWithinAsync(TimeSpan.FromMilliseconds(200))).ShouldBeTrue("the commit must wait until the next message is asked for");
        var next = messages.MoveNextAsync().AsTask();

        (await pair.Server.ReceiveAsync<CommitFrame>()).ShouldBe(new CommitFrame("jobs", 10));
        await pair.Server.SendAsync(new MessageFrame("jobs", 11, 0, null, Encoding.UTF8.GetBytes("b")));
        (await next.WaitAsync(Patience)).ShouldBeTrue();
        messages.Current.Sequence.ShouldBe(11);
    }

    [Fact]
    public async Task Commit_sends_a_bare_commit_or_the_message_topic_and_sequence()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);
        var message = new ZaichikMessage("jobs", 77, DateTimeOffset.UnixEpoch, null, Array.Empty<byte>());

        await pair.Client.CommitAsync();
        await pair.Client.CommitAsync(message);

        (await pair.Server.ReceiveAsync<CommitFrame>()).ShouldBe(CommitFrame.All);
        (await pair.Server.ReceiveAsync<CommitFrame>()).ShouldBe(new CommitFrame("jobs", 77));
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(-1L)]
    public async Task Commit_of_a_sequence_below_1_throws_without_sending_anything(long sequence)
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);

        var error = await Should.ThrowAsync<ArgumentOutOfRangeException>(async () => await pair.Client.CommitAsync("jobs", sequence));

        error.ParamName.ShouldBe("sequence");
        (await pair.Server.SendsNothingWithinAsync(TimeSpan.FromMilliseconds(100))).ShouldBeTrue("sequences start at 1, so no Commit may go out");
    }

    [Fact]
    public void Message_text_names_its_topic_and_sequence()
    {
        var message = new ZaichikMessage("jobs", 77, DateTimeOffset.UnixEpoch, null, Array.Empty<byte>());

        message.ToString().ShouldBe("jobs@77");
    }

    [Fact]
    public async Task Unsubscribe_ends_the_enumeration_once_the_server_acks_it()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);
        var subscription = await SubscribeAsync(pair, "news");
        var reading = Task.Run(async () =>
        {
            var count = 0;
            await foreach (var message in subscription)
            {
                count++;
            }

            return count;
        });

        var unsubscribing = pair.Client.UnsubscribeAsync("news").AsTask();
        var unsubscribe = await pair.Server.ReceiveAsync<UnsubscribeFrame>();
        unsubscribe.Topic.ShouldBe("news");
        await pair.Server.SendAsync(new AckFrame(unsubscribe.RequestId, null, false));
        await unsubscribing.WaitAsync(Patience);

        (await reading.WaitAsync(Patience)).ShouldBe(0);
    }

    [Fact]
    public async Task Connection_level_error_is_raised_as_ServerError_and_becomes_the_close_reason()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server, WithoutReconnect);
        var raised = new TaskCompletionSource<ZaichikServerException>(TaskCreationOptions.RunContinuationsAsynchronously);
        pair.Client.ServerError += (_, error) => raised.TrySetResult(error);
        var publishing = pair.Client.PublishAsync("t", "x").AsTask();
        await pair.Server.ReceiveAsync<PublishFrame>();

        await pair.Server.SendAsync(new ErrorFrame(null, ErrorCode.ServerShuttingDown, "bye"));
        (await raised.Task.WaitAsync(Patience)).Code.ShouldBe(ErrorCode.ServerShuttingDown);
        pair.Server.Drop();

        var error = await Should.ThrowAsync<ZaichikConnectionException>(publishing.WaitAsync(Patience));
        error.Message.ShouldContain("ServerShuttingDown");
        error.InnerException.ShouldBeOfType<ZaichikServerException>();
    }

    [Fact]
    public async Task Dispose_sends_Close_fails_unanswered_requests_with_connection_closed_and_ends_subscriptions()
    {
        await using var server = new FakeServer();
        var options = ZaichikClientOptions.Default with { CloseTimeout = TimeSpan.FromMilliseconds(300) };
        await using var pair = await ConnectedPair.StartAsync(server, options);
        var subscription = await SubscribeAsync(pair, "news");
        var reading = Task.Run(async () =>
        {
            await foreach (var message in subscription)
            {
            }
        });
        var publishing = pair.Client.PublishAsync("news", "never answered").AsTask();
        await pair.Server.ReceiveAsync<PublishFrame>();

        var disposing = pair.Client.DisposeAsync().AsTask();
        await pair.Server.ReceiveAsync<CloseFrame>();
        await disposing.WaitAsync(Patience);

        (await Should.ThrowAsync<ZaichikConnectionException>(publishing.WaitAsync(Patience))).Message.ShouldBe("connection closed");
        await reading.WaitAsync(Patience);
        await pair.Client.DisposeAsync();
        await Should.ThrowAsync<ZaichikConnectionException>(async () => await pair.Client.PublishAsync("news", "after"));
    }

    [Fact]
    public async Task Dispose_lets_answers_the_server_sends_before_closing_complete_their_requests()
    {
        await using var server = new FakeServer();
        await using var pair = await ConnectedPair.StartAsync(server);
        var publishing = pair.Client.PublishAsync("t", "x").AsTask();
        var publish = await pair.Server.ReceiveAsync<PublishFrame>();

        var disposing = pair.Client.DisposeAsync().AsTask();
        await pair.Server.ReceiveAsync<CloseFrame>();
        await pair.Server.SendAsync(new AckFrame(publish.RequestId, 5, false));
        pair.Server.Drop();
        await disposing.WaitAsync(Patience);

        (await publishing.WaitAsync(Patience)).Sequence.ShouldBe(5);
    }

    [Fact]
    public async Task Invalid_options_are_refused_before_connecting()
    {
        await Should.ThrowAsync<ArgumentOutOfRangeException>(async () =>
            await ZaichikClient.ConnectAsync("127.0.0.1", 1, ZaichikClientOptions.Default with { MaxPendingRequests = 0 }));
        await Should.ThrowAsync<ArgumentOutOfRangeException>(async () =>
            await ZaichikClient.ConnectAsync("127.0.0.1", 1, ZaichikClientOptions.Default with { RequestTimeout = TimeSpan.Zero }));
    }

    private static async Task<ZaichikSubscription> SubscribeAsync(ConnectedPair pair, string topic, SubscribeOptions? options = null)
    {
        var subscribing = pair.Client.SubscribeAsync(topic, options).AsTask();
        var subscribe = await pair.Server.ReceiveAsync<SubscribeFrame>();
        await pair.Server.SendAsync(new AckFrame(subscribe.RequestId, null, false));
        return await subscribing.WaitAsync(Patience);
    }

    private static Task<List<ZaichikMessage>> TakeAsync(ZaichikSubscription subscription, int count) =>
        ReconnectTests.ReadAsync(subscription, count, Patience);

    /// <summary>The client as it was before reconnecting existed: a lost connection ends it. Reconnecting has its own tests.</summary>
    private static readonly ZaichikClientOptions WithoutReconnect = new() { Reconnect = new() { Enabled = false } };

    private sealed record ConnectedPair(ZaichikClient Client, FakeConnection Server) : IAsyncDisposable
    {
        public static async Task<ConnectedPair> StartAsync(FakeServer server, ZaichikClientOptions? options = null)
        {
            var connecting = ZaichikClient.ConnectAsync("127.0.0.1", server.Port, options).AsTask();
            var connection = await server.AcceptAsync();
            var client = await connecting.WaitAsync(Patience);
            return new ConnectedPair(client, connection);
        }

        public async ValueTask DisposeAsync()
        {
            Server.Drop();
            await Client.DisposeAsync();
        }
    }
}
