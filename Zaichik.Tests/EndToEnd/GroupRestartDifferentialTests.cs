using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Tests.Client;

namespace Zaichik.Tests.EndToEnd;

/// <summary>
/// A consumer group must come through a broker restart as it comes through its member's connection dropping: the same
/// random commits, nacks and departures against a broker that restarts halfway and one whose member only reconnects
/// must give the same deliveries (sequence and delivery count, in order) and the same dead letters.
/// </summary>
public sealed class GroupRestartDifferentialTests
{
    private const int Messages = 60;

    private static readonly TopicOptions Retained = new() { RetentionTtl = TimeSpan.FromHours(1) };

    private static readonly SubscribeOptions Member = new() { Group = "workers", Prefetch = 1, MaxDeliver = 3, DeadLetterTopic = "jobs.dead" };

    [Theory]
    [InlineData(20261129)]
    [InlineData(7)]
    public async Task A_group_whose_broker_restarts_halfway_delivers_and_dead_letters_exactly_what_one_whose_member_reconnects_does(int seed)
    {
        await using var steady = await TestServer.StartAsync();
        await using var restarted = await TestServer.StartAsync();
        var sides = new[] { new Side(steady), new Side(restarted) };
        foreach (var side in sides)
        {
            await side.StartAsync();
        }

        var random = new Random(seed);
        var settled = 0;
        var deadLetters = 0;
        var deliveries = 0;
        while (settled < Messages)
        {
            deliveries++;
            deliveries.ShouldBeLessThan(Messages * 4, "every message is settled after at most 3 deliveries");
            var received = new ZaichikMessage[2];
            for (var i = 0; i < 2; i++)
            {
                received[i] = (await ReconnectTests.ReadAsync(sides[i].Subscription!, 1))[0];
            }

            var what = $"delivery {deliveries}";
            (received[1].Sequence, received[1].DeliveryCount).ShouldBe((received[0].Sequence, received[0].DeliveryCount), what);

            // Given back (nacked, or in flight when the member goes) after its last delivery, a message is dead-lettered.
            var lastDelivery = received[0].DeliveryCount == Member.MaxDeliver;
            var roll = random.Next(100);
            if (roll < 60 && deliveries != 40)
            {
                settled++;
                for (var i = 0; i < 2; i++)
                {
                    await sides[i].Client!.CommitAsync(received[i]);
                }

                continue;
            }

            (settled, deadLetters) = lastDelivery ? (settled + 1, deadLetters + 1) : (settled, deadLetters);
            if (deliveries == 40)
            {
                // Halfway, with this delivery in flight: the reference's member loses its connection, the other broker restarts.
                await sides[0].ReconnectAsync(restart: false);
                await sides[1].ReconnectAsync(restart: true);
            }
            else if (roll < 90)
            {
                for (var i = 0; i < 2; i++)
                {
                    await sides[i].Client!.NackAsync(received[i]);
                }
            }
            else
            {
                // The member leaves with its delivery in flight and comes back.
                foreach (var side in sides)
                {
                    await side.ResubscribeAsync();
                }
            }
        }

        // What went to the dead-letter topic, in order, with the count each had: the same on both.
        var dead = new List<string>[2];
        deadLetters.ShouldBeGreaterThan(0, "the script dead-letters some");
        for (var i = 0; i < 2; i++)
        {
            var reader = await sides[i].Server.ConnectAsync();
            var letters = await reader.SubscribeAsync("jobs.dead", new SubscribeOptions { AckPolicy = AckPolicy.None });
            dead[i] = (await ReconnectTests.ReadAsync(letters, deadLetters)).Select(message =>
                $"{message.Headers.GetText("zaichik-dead-letter-sequence")} after {message.Headers.GetText("zaichik-delivery-count")}: {message.PayloadText}").ToList();
        }

        dead[1].ShouldBe(dead[0]);
        foreach (var side in sides)
        {
            await side.DisposeAsync();
        }
    }

    /// <summary>One broker with its group member.</summary>
    private sealed class Side(TestServer server) : IAsyncDisposable
    {
        public TestServer Server { get; } = server;

        public ZaichikClient? Client { get; private set; }

        public ZaichikSubscription? Subscription { get; private set; }

        public async Task StartAsync()
        {
            Client = await Server.ConnectAsync();
            await Client.CreateTopicAsync("jobs", Retained);
            for (var i = 1; i <= Messages; i++)
            {
                await Client.PublishAsync("jobs", $"job {i}");
            }

            Subscription = await Client.SubscribeAsync("jobs", Member);
        }

        public async Task ResubscribeAsync()
        {
            await Subscription!.DisposeAsync();
            await Client!.ConfirmCommitsAsync();
            Subscription = await Client.SubscribeAsync("jobs", Member);
        }

        public async Task ReconnectAsync(bool restart)
        {
            await Client!.ConfirmCommitsAsync();
            await Client.DisposeAsync();
            if (restart)
            {
                await Server.RestartAsync();
            }
            else
            {
                await TestServer.EventuallyAsync(() => Server.State.Server().Connections == 0, "the member's connection is gone");
            }

            Client = await Server.ConnectAsync();
            Subscription = await Client.SubscribeAsync("jobs", Member);
        }

        public async ValueTask DisposeAsync()
        {
            if (Client is not null)
            {
                await Client.DisposeAsync();
            }
        }
    }
}
