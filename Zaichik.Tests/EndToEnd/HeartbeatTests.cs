using Microsoft.Extensions.Time.Testing;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Tests.EndToEnd;

/// <summary>The server's idle and handshake timeouts, and Ping/Pong, on a fake clock.</summary>
public sealed class HeartbeatTests
{
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_connection_silent_for_the_idle_timeout_gets_IdleTimeout_and_is_closed()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(options => options with { IdleTimeout = Idle }, time);
        await using var raw = await RawConnection.ConnectAsync(server.Port);

        time.Advance(Idle + TimeSpan.FromSeconds(1));

        var reply = await raw.ReceiveAsync();
        reply.Error!.Value.Code.ShouldBe(ErrorCode.IdleTimeout);
        reply.Error!.Value.RequestId.ShouldBeNull();
        await raw.ShouldBeClosedByServerAsync();
        await TestServer.EventuallyAsync(() => server.State.Server().Connections == 0, "the idle connection should be released");
    }

    [Fact]
    public async Task Pings_keep_a_quiet_connection_open_and_each_gets_a_Pong()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(options => options with { IdleTimeout = Idle }, time);
        await using var raw = await RawConnection.ConnectAsync(server.Port);

        for (var i = 0; i < 4; i++)
        {
            time.Advance(Idle * 2 / 3);
            await raw.SendAsync(writer => FrameWriter.Write(writer, new PingFrame((ulong)i)));
            (await raw.ReceiveAsync()).Type.ShouldBe(FrameType.Pong);
        }

        // Four Pings spread over 80 s kept the connection open: it still answers requests.
        await raw.SendAsync(writer => FrameWriter.Write(writer, new CreateTopicFrame(1, "still-open", 0, 0)));
        (await raw.ReceiveAsync()).Ack!.Value.RequestId.ShouldBe(1UL);
    }

    [Fact]
    public async Task A_connection_that_sends_no_Hello_within_the_handshake_timeout_is_closed()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(
            options => options with { IdleTimeout = TimeSpan.Zero, HandshakeTimeout = TimeSpan.FromSeconds(5) }, time);
        await using var raw = await RawConnection.ConnectAsync(server.Port, hello: false);
        await TestServer.EventuallyAsync(() => server.State.Server().Connections == 1, "the server should have accepted the connection");

        time.Advance(TimeSpan.FromSeconds(6));

        var reply = await raw.ReceiveAsync();
        reply.Error!.Value.Code.ShouldBe(ErrorCode.IdleTimeout);
        reply.Error!.Value.Text.ShouldContain("Hello");
        await raw.ShouldBeClosedByServerAsync();
    }

    [Fact]
    public async Task With_the_idle_timeout_off_a_silent_connection_stays_open()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(options => options with { IdleTimeout = TimeSpan.Zero }, time);
        await using var raw = await RawConnection.ConnectAsync(server.Port);

        time.Advance(TimeSpan.FromDays(1));

        await raw.SendAsync(writer => FrameWriter.Write(writer, new PingFrame(9)));
        (await raw.ReceiveAsync()).Type.ShouldBe(FrameType.Pong);
    }

    [Fact]
    public async Task The_server_announces_its_idle_timeout_and_the_client_pings_often_enough_to_stay_connected()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(options => options with { IdleTimeout = Idle }, time);
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port, ZaichikClientOptions.Default with { TimeProvider = time });
        client.ServerIdleTimeout.ShouldBe(Idle);

        // The client pings every 10 s (a third of the idle timeout); step in 5 s so each Ping is read before the next check.
        for (var elapsed = TimeSpan.Zero; elapsed < Idle * 3; elapsed += TimeSpan.FromSeconds(5))
        {
            time.Advance(TimeSpan.FromSeconds(5));
            await Task.Delay(20);
        }

        client.IsConnected.ShouldBeTrue();
        (await client.PublishAsync("after-90-quiet-seconds", "x")).Sequence.ShouldBeGreaterThanOrEqualTo(0);
    }
}
