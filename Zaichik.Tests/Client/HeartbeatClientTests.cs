using Microsoft.Extensions.Time.Testing;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Tests.Client;

/// <summary>The client's Pings and its detection of a dead server, on a fake clock against a scripted server.</summary>
public sealed class HeartbeatClientTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    private static ValueTask<ZaichikClient> ConnectAsync(FakeServer server, FakeTimeProvider time, TimeSpan? interval = null) =>
        ZaichikClient.ConnectAsync("127.0.0.1", server.Port, ZaichikClientOptions.Default with
        {
            TimeProvider = time,
            PingInterval = interval ?? Interval,
            RequestTimeout = Timeout.InfiniteTimeSpan,
            Reconnect = new() { Enabled = false },
        });

    [Fact]
    public async Task A_server_that_stops_answering_is_declared_dead_and_everything_pending_fails()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = new FakeServer();
        var accepting = server.AcceptAsync();
        await using var client = await ConnectAsync(server, time);
        var connection = await accepting;
        ZaichikConnectionException? disconnected = null;
        client.Disconnected += (_, reason) => disconnected = reason;
        var pending = client.PublishAsync("t", "never answered").AsTask();
        await connection.ReceiveAsync<PublishFrame>();

        time.Advance(Interval);
        (await connection.ReceiveAsync<PingFrame>()).Nonce.ShouldBe(1UL);
        time.Advance(Interval);
        (await connection.ReceiveAsync<PingFrame>()).Nonce.ShouldBe(2UL);
        client.IsConnected.ShouldBeTrue("two unanswered Pings are still within MaxPingsOutstanding");
        time.Advance(Interval);

        var failure = await Should.ThrowAsync<ZaichikConnectionException>(pending.WaitAsync(TimeSpan.FromSeconds(10)));
        failure.Message.ShouldContain("dead");
        failure.Message.ShouldContain("2 Pings went unanswered");
        client.IsConnected.ShouldBeFalse();
        disconnected.ShouldNotBeNull().Message.ShouldBe(failure.Message);
    }

    [Fact]
    public async Task Answered_Pings_keep_the_connection_alive()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = new FakeServer();
        var accepting = server.AcceptAsync();
        await using var client = await ConnectAsync(server, time);
        var connection = await accepting;

        // Ten intervals: without answers the client would have given up after the third. It pings only in intervals
        // that saw nothing sent or nothing received, so not every interval has a Ping to answer.
        var answered = 0;
        for (var i = 0; i < 10; i++)
        {
            time.Advance(Interval);
            while (!await connection.SendsNothingWithinAsync(TimeSpan.FromMilliseconds(100)))
            {
                var ping = await connection.ReceiveAsync<PingFrame>();
                await connection.SendAsync(new PongFrame(ping.Nonce));
                answered++;
            }
        }

        answered.ShouldBeGreaterThanOrEqualTo(3);
        client.IsConnected.ShouldBeTrue();
    }

    [Fact]
    public async Task The_client_pings_at_least_three_times_per_announced_idle_timeout()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = new FakeServer(idleTimeoutMs: 3_000);
        var accepting = server.AcceptAsync();
        await using var client = await ConnectAsync(server, time, interval: TimeSpan.FromSeconds(15));
        var connection = await accepting;

        client.ServerIdleTimeout.ShouldBe(TimeSpan.FromSeconds(3));
        time.Advance(TimeSpan.FromSeconds(1));

        await connection.ReceiveAsync<PingFrame>();
    }

    [Fact]
    public async Task The_client_answers_a_server_Ping_with_its_nonce()
    {
        await using var server = new FakeServer();
        var accepting = server.AcceptAsync();
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port);
        var connection = await accepting;

        await connection.SendAsync(new PingFrame(77));

        (await connection.ReceiveAsync<PongFrame>()).Nonce.ShouldBe(77UL);
    }

    [Fact]
    public async Task The_token_travels_in_the_Hello()
    {
        await using var server = new FakeServer();
        var accepting = server.AcceptAsync();
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port, ZaichikClientOptions.Default with { Token = "token-in-hello-0001" });
        await accepting;

        server.LastClientHello!.Value.Token.ShouldBe("token-in-hello-0001");
    }

    [Fact]
    public void Heartbeat_options_are_validated()
    {
        Should.Throw<ArgumentOutOfRangeException>(() => ZaichikClient.ConnectAsync("127.0.0.1", 1, ZaichikClientOptions.Default with { PingInterval = TimeSpan.Zero }).AsTask().GetAwaiter().GetResult())
            .ParamName.ShouldBe("PingInterval");
        Should.Throw<ArgumentOutOfRangeException>(() => ZaichikClient.ConnectAsync("127.0.0.1", 1, ZaichikClientOptions.Default with { MaxPingsOutstanding = 0 }).AsTask().GetAwaiter().GetResult())
            .ParamName.ShouldBe("MaxPingsOutstanding");
    }
}
