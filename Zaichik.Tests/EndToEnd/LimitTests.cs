using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Tests.EndToEnd;

/// <summary>Connection-level limits: each answered with its own error code, and nobody else is affected.</summary>
public sealed class LimitTests
{
    [Fact]
    public async Task Connections_past_the_maximum_get_TooManyConnections_and_a_freed_slot_is_reusable()
    {
        await using var server = await TestServer.StartAsync(options => options with { MaxConnections = 2 });
        var first = await server.ConnectAsync();
        var second = await server.ConnectAsync();

        var refused = await Should.ThrowAsync<ZaichikServerException>(async () => await ZaichikClient.ConnectAsync("127.0.0.1", server.Port));

        refused.Code.ShouldBe(ErrorCode.TooManyConnections);
        refused.Message.ShouldContain("2 connections");
        (await first.PublishAsync("limits", "still served")).Sequence.ShouldBeGreaterThanOrEqualTo(0);

        await second.DisposeAsync();
        await TestServer.EventuallyAsync(() => server.State.Server().Connections == 1, "the closed connection should free its slot");
        await using var third = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port);
        (await third.PublishAsync("limits", "in the freed slot")).Sequence.ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task Publishes_past_the_in_flight_limit_are_refused_unstored_and_the_rest_are_acknowledged()
    {
        const int limit = 5;
        const int sent = 200;
        await using var server = await TestServer.StartAsync(options => options with { MaxPublishesInFlight = limit });
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("inflight", new TopicOptions { Durability = Durability.Always, RetentionTtl = TimeSpan.FromHours(1) });
        await using var raw = await RawConnection.ConnectAsync(server.Port);

        // One write, so the server reads the publishes faster than a commit completes.
        await raw.SendAsync(writer =>
        {
            for (var i = 0; i < sent; i++)
            {
                FrameWriter.Write(writer, new PublishFrame((ulong)i, "inflight", null, BitConverter.GetBytes(i)));
            }
        });

        var acknowledged = new List<ulong>();
        var refused = new List<ErrorFrame>();
        for (var i = 0; i < sent; i++)
        {
            var reply = await raw.ReceiveAsync();
            if (reply.Ack is { } ack)
            {
                acknowledged.Add(ack.RequestId);
            }
            else
            {
                refused.Add(reply.Error!.Value);
            }
        }

        refused.ShouldNotBeEmpty("200 publishes in one write must overrun 5 in flight");
        refused.ShouldAllBe(error => error.Code == ErrorCode.TooManyPublishesInFlight);
        acknowledged.Count.ShouldBeGreaterThanOrEqualTo(limit);

        // Exactly the acknowledged publishes were stored.
        await client.PublishAsync("inflight", "end");
        await using var reader = new MessageReader(await client.SubscribeAsync("inflight", new SubscribeOptions { Prefetch = 1000, AutoCommit = true }));
        var stored = 0;
        while ((await reader.NextAsync()).PayloadText != "end")
        {
            stored++;
        }

        stored.ShouldBe(acknowledged.Count);
    }
}
