using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Shouldly;
using Xunit;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Client;

/// <summary>
/// The client in front of a cluster: fake nodes that lead nothing redirect it (or answer NoLeader) and a real broker
/// plays the leader. Requests turned away go to the leader and are carried out there once; the client follows
/// <see cref="ZaichikClientOptions.Servers"/> when a server is down, and does not spin when nodes disagree.
/// </summary>
public sealed class ClusterClientTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private static ZaichikClientOptions Fast(int port) => new()
    {
        Host = "127.0.0.1",
        Port = port,
        Reconnect = new() { MinDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(100) },
        CloseTimeout = TimeSpan.FromSeconds(1),
    };

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Publishes_a_follower_redirects_are_all_stored_once_on_the_leader_in_order(bool idempotence)
    {
        await using var server = await TestServer.StartAsync();
        var leader = $"127.0.0.1:{server.Port}";
        await using var direct = await server.ConnectAsync();
        await direct.CreateTopicAsync("orders", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        // Its answers trickle in: the client must not leave it before it has answered every publish sent to it, or
        // those without idempotence would fail (sent, and whether they were stored unknown).
        await using var follower = new FakeClusterNode("follower", leader) { ReplyPause = TimeSpan.FromMilliseconds(2) };
        var redirects = new ConcurrentQueue<ZaichikRedirect>();
        await using var client = await ZaichikClient.ConnectAsync(Fast(follower.Port) with { Idempotence = idempotence });
        client.Redirected += (_, redirect) => redirects.Enqueue(redirect);
        client.CurrentEndpoint.ShouldBe(follower.Endpoint);

        // All in flight at once: the follower redirects every one of them.
        var publishes = Enumerable.Range(0, 100).Select(i => client.PublishAsync("orders", $"m{i}").AsTask()).ToArray();
        var results = await Task.WhenAll(publishes).WaitAsync(Patience);

        results.Select(result => result.Sequence).ShouldBe(Enumerable.Range(1, 100).Select(i => (long)i), "each publish stored once, in call order");
        results.ShouldAllBe(result => !result.Duplicate);
        client.CurrentEndpoint.ShouldBe(leader);
        follower.Requests.ShouldBeGreaterThanOrEqualTo(1);
        var redirect = redirects.ShouldHaveSingleItem("one redirect leaves the follower; the requests it turned away follow on the leader");
        redirect.ShouldBe(new ZaichikRedirect(follower.Endpoint, "orders", "leader", leader, TimeSpan.Zero));
        (await client.PublishAsync("orders", "after")).Sequence.ShouldBe(101);

        var stored = await ReadAsync(direct, "orders", 101);
        stored.Select(message => message.PayloadText).ShouldBe(Enumerable.Range(0, 100).Select(i => $"m{i}").Append("after"));
        (await direct.PublishAsync("orders", "end")).Sequence.ShouldBe(102, "nothing was stored twice");
    }

    [Fact]
    public async Task A_subscription_made_through_a_follower_is_made_on_the_leader_and_receives()
    {
        await using var server = await TestServer.StartAsync();
        await using var direct = await server.ConnectAsync();
        await direct.CreateTopicAsync("news", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        (await direct.PublishAsync("news", "before")).Sequence.ShouldBe(1);
        await using var follower = new FakeClusterNode("follower", $"127.0.0.1:{server.Port}");
        await using var client = await ZaichikClient.ConnectAsync(Fast(follower.Port));

        await using var subscription = await client.SubscribeAsync("news", new SubscribeOptions { Prefetch = 10, AutoCommit = true })
            .AsTask().WaitAsync(Patience);
        client.CurrentEndpoint.ShouldBe($"127.0.0.1:{server.Port}");
        subscription.StartSequence.ShouldBe(1);
        (await direct.PublishAsync("news", "after")).Sequence.ShouldBe(2);

        using var reading = new CancellationTokenSource(Patience);
        await using var messages = subscription.GetAsyncEnumerator(reading.Token);
        (await messages.MoveNextAsync()).ShouldBeTrue();
        messages.Current.PayloadText.ShouldBe("before");
        (await messages.MoveNextAsync()).ShouldBeTrue();
        messages.Current.PayloadText.ShouldBe("after");
    }

    [Fact]
    public async Task Requests_answered_NoLeader_wait_and_are_carried_out_once_a_leader_is_known()
    {
        await using var server = await TestServer.StartAsync();
        await using var direct = await server.ConnectAsync();
        await direct.CreateTopicAsync("jobs", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        await using var follower = new FakeClusterNode("follower", $"127.0.0.1:{server.Port}", noLeaderFirst: 2);
        var redirects = new ConcurrentQueue<ZaichikRedirect>();

        // Without idempotence, too: a publish the node did not carry out is sent again rather than failed.
        await using var client = await ZaichikClient.ConnectAsync(Fast(follower.Port) with { Idempotence = false });
        client.Redirected += (_, redirect) => redirects.Enqueue(redirect);

        var published = await client.PublishAsync("jobs", "j1").AsTask().WaitAsync(Patience);

        published.Sequence.ShouldBe(1);
        follower.NoLeaderAnswers.ShouldBe(2);
        follower.Connections.ShouldBe(3, "each NoLeader sends the client to the next server (here the same) after a backoff, then the redirect to the leader");
        redirects.Select(redirect => redirect.Endpoint).ShouldBe(new string?[] { null, null, $"127.0.0.1:{server.Port}" });
        redirects.Take(2).ShouldAllBe(redirect => redirect.Delay > TimeSpan.Zero, "NoLeader waits the backoff");
        client.CurrentEndpoint.ShouldBe($"127.0.0.1:{server.Port}");
        (await ReadAsync(direct, "jobs", 1)).Single().PayloadText.ShouldBe("j1");
        (await direct.PublishAsync("jobs", "end")).Sequence.ShouldBe(2);
    }

    [Fact]
    public async Task A_redirect_is_followed_even_with_reconnecting_off()
    {
        await using var server = await TestServer.StartAsync();
        await using var follower = new FakeClusterNode("follower", $"127.0.0.1:{server.Port}");
        await using var client = await ZaichikClient.ConnectAsync(Fast(follower.Port) with { Reconnect = new() { Enabled = false } });

        (await client.PublishAsync("off", "one").AsTask().WaitAsync(Patience)).Sequence.ShouldBe(1);

        client.CurrentEndpoint.ShouldBe($"127.0.0.1:{server.Port}");
        client.ConnectionState.ShouldBe(ZaichikConnectionState.Connected);
    }

    [Fact]
    public async Task When_the_first_server_is_down_the_client_connects_to_the_next_of_Servers()
    {
        await using var server = await TestServer.StartAsync();
        var closedPort = ClosedPort();
        var options = Fast(closedPort) with { Servers = [$"127.0.0.1:{server.Port}"] };

        await using var connected = await ZaichikClient.ConnectAsync(options).AsTask().WaitAsync(Patience);
        connected.CurrentEndpoint.ShouldBe($"127.0.0.1:{server.Port}");
        (await connected.PublishAsync("rr", "one")).Sequence.ShouldBe(1);

        // In the background: the first attempt fails, the next goes to the next server.
        await using var created = ZaichikClient.Create(options);
        (await created.PublishAsync("rr", "two").AsTask().WaitAsync(Patience)).Sequence.ShouldBe(2);
        created.CurrentEndpoint.ShouldBe($"127.0.0.1:{server.Port}");
    }

    [Fact]
    public async Task ConnectAsync_reports_every_server_when_none_answers()
    {
        var first = ClosedPort();
        var second = ClosedPort();
        var error = await Should.ThrowAsync<ZaichikConnectionException>(async () =>
            await ZaichikClient.ConnectAsync(Fast(first) with { Servers = [$"127.0.0.1:{second}"] }));

        error.Message.ShouldContain("any of the 2 Zaichik servers");
        error.Message.ShouldContain($"127.0.0.1:{first}");
        error.Message.ShouldContain($"127.0.0.1:{second}");
    }

    [Fact]
    public async Task When_the_leader_goes_away_the_client_falls_back_to_its_servers_and_is_redirected_again()
    {
        await using var server = await TestServer.StartAsync();
        var leader = $"127.0.0.1:{server.Port}";
        await using var follower = new FakeClusterNode("follower", leader);
        await using var client = await ZaichikClient.ConnectAsync(Fast(follower.Port));
        (await client.PublishAsync("moves", "one").AsTask().WaitAsync(Patience)).Sequence.ShouldBe(1);
        client.CurrentEndpoint.ShouldBe(leader);
        follower.Connections.ShouldBe(1);

        await server.StopAsync();
        await TestServer.EventuallyAsync(() => follower.Connections >= 2, "a failed attempt at the leader sends the client back to its servers");
        await server.StartAgainAsync();

        (await client.PublishAsync("moves", "two").AsTask().WaitAsync(Patience)).Sequence.ShouldBe(2);
        client.CurrentEndpoint.ShouldBe(leader);
    }

    [Fact]
    public async Task A_subscription_the_follower_will_not_restore_is_restored_on_the_leader_once_it_is_back()
    {
        await using var server = await TestServer.StartAsync();
        await using var follower = new FakeClusterNode("follower", $"127.0.0.1:{server.Port}");
        await using var client = await ZaichikClient.ConnectAsync(Fast(follower.Port));
        await client.CreateTopicAsync("feed", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) }).AsTask().WaitAsync(Patience);
        await using var subscription = await client.SubscribeAsync("feed", new SubscribeOptions { Prefetch = 10, AutoCommit = true });
        using var reading = new CancellationTokenSource(Patience);
        await using var messages = subscription.GetAsyncEnumerator(reading.Token);
        await client.PublishAsync("feed", "one");
        (await messages.MoveNextAsync()).ShouldBeTrue();
        messages.Current.Sequence.ShouldBe(1);

        // While the leader is down the client falls back to the follower, which redirects the restoring Subscribe.
        await server.StopAsync();
        await TestServer.EventuallyAsync(() => follower.Requests >= 3, "the client tries the follower, which redirects the restore, more than once");
        await server.StartAgainAsync();

        (await client.PublishAsync("feed", "two").AsTask().WaitAsync(Patience)).Sequence.ShouldBe(2);
        (await messages.MoveNextAsync()).ShouldBeTrue();
        messages.Current.Sequence.ShouldBe(2);
        messages.Current.PayloadText.ShouldBe("two");
        client.CurrentEndpoint.ShouldBe($"127.0.0.1:{server.Port}");
        server.State.Connections().Count.ShouldBe(1, "one reconnect loop at a time: no connection left behind");
    }

    [Fact]
    public async Task Nodes_that_redirect_to_each_other_make_requests_time_out_without_a_hot_loop()
    {
        await using var a = new FakeClusterNode("a", "127.0.0.1:1");
        await using var b = new FakeClusterNode("b", a.Endpoint);
        a.RedirectTo = b.Endpoint;
        var redirects = 0L;
        using var meter = new MeterListener();
        meter.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == ZaichikTelemetry.MeterName && instrument.Name == "zaichik.client.redirects")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        meter.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref redirects, value));
        meter.Start();
        await using var client = await ZaichikClient.ConnectAsync(Fast(a.Port) with { RequestTimeout = TimeSpan.FromSeconds(2) });

        var clock = Stopwatch.StartNew();
        var error = await Should.ThrowAsync<ZaichikTimeoutException>(client.PublishAsync("nowhere", "x").AsTask().WaitAsync(Patience));
        clock.Stop();

        error.Message.ShouldContain("no answer within 2 s");
        clock.Elapsed.ShouldBeGreaterThan(TimeSpan.FromSeconds(1.5), "the request stays pending across the redirects until its timeout");
        var connections = a.Connections + b.Connections;
        connections.ShouldBeGreaterThan(3, "the client follows the redirects");
        connections.ShouldBeLessThan(100, "redirects that follow each other go through the backoff");
        Interlocked.Read(ref redirects).ShouldBeGreaterThan(3, "zaichik.client.redirects counts them");
    }

    [Theory]
    [InlineData("broker", "no port")]
    [InlineData("broker:", "no port")]
    [InlineData(":8889", "no host")]
    [InlineData("broker:0", "not 1 to 65535")]
    [InlineData("broker:65536", "not 1 to 65535")]
    [InlineData("broker:http", "not 1 to 65535")]
    [InlineData("::1:8889", "in brackets")]
    [InlineData("[::1]", "no port")]
    [InlineData("", "empty")]
    public void A_malformed_entry_of_Servers_is_refused_with_a_clear_message(string entry, string reason)
    {
        var options = ZaichikClientOptions.Default with { Servers = ["broker-1:8889", entry] };

        var error = Should.Throw<ArgumentException>(options.Validate);

        error.ParamName.ShouldBe("Servers");
        error.Message.ShouldContain($"Servers[1] ('{entry}') must be host:port");
        error.Message.ShouldContain(reason);
    }

    [Fact]
    public void Well_formed_Servers_are_accepted_and_shown()
    {
        var options = ZaichikClientOptions.Default with { Servers = ["broker-2:8890", "10.0.0.3:8889", "[::1]:8891"] };

        options.Validate();

        options.ToString().ShouldContain("Servers = [broker-2:8890, 10.0.0.3:8889, [::1]:8891]");
        Should.Throw<ArgumentException>(() => (options with { WebSocketUrl = new Uri("ws://broker:8890/zaichik") }).Validate())
            .ParamName.ShouldBe("Servers");
    }

    /// <summary>A loopback port nothing listens on (it was free a moment ago).</summary>
    private static int ClosedPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>The first <paramref name="count"/> messages of <paramref name="topic"/>, read from its start.</summary>
    private static async Task<List<ZaichikMessage>> ReadAsync(ZaichikClient client, string topic, int count)
    {
        await using var subscription = await client.SubscribeAsync(topic, new SubscribeOptions { Prefetch = 1000, AckPolicy = AckPolicy.None });
        using var reading = new CancellationTokenSource(Patience);
        var messages = new List<ZaichikMessage>();
        await foreach (var message in subscription.WithCancellation(reading.Token))
        {
            messages.Add(message);
            if (messages.Count == count)
            {
                break;
            }
        }

        return messages;
    }
}
