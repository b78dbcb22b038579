using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Tests.Client;

namespace Zaichik.Tests.EndToEnd;

/// <summary>
/// What the consumer-group differential tests do to two brokers alike: 60 messages, one member with prefetch 1,
/// MaxDeliver 3 and a dead-letter topic, then random commits, Nacks and departures (the member leaves with its delivery
/// in flight and comes back), and at delivery 40 a disruption that each side makes its own way (a dropped connection, a
/// broker restart, a cluster's leader stopped). Every delivery (sequence and delivery count) must be the same on both,
/// and so must the dead letters at the end.
/// </summary>
internal static class GroupScript
{
    public const int Messages = 60;

    private const int DisruptAt = 40;

    private static readonly TopicOptions Retained = new() { RetentionTtl = TimeSpan.FromHours(1) };

    private static readonly SubscribeOptions Member = new() { Group = "workers", Prefetch = 1, MaxDeliver = 3, DeadLetterTopic = "jobs.dead" };

    public static async Task RunAsync(int seed, GroupSide reference, GroupSide subject)
    {
        var sides = new[] { reference, subject };
        foreach (var side in sides)
        {
            await side.StartAsync();
        }

        var random = new Random(seed);
        var (settled, deadLetters, deliveries) = (0, 0, 0);
        while (settled < Messages)
        {
            deliveries++;
            deliveries.ShouldBeLessThan(Messages * 4, "every message is settled after at most 3 deliveries");
            var received = new ZaichikMessage[2];
            for (var i = 0; i < 2; i++)
            {
                received[i] = (await ReconnectTests.ReadAsync(sides[i].Subscription, 1))[0];
            }

            (received[1].Sequence, received[1].DeliveryCount).ShouldBe((received[0].Sequence, received[0].DeliveryCount), $"delivery {deliveries}");

            var roll = random.Next(100);
            if (roll < 60 && deliveries != DisruptAt)
            {
                settled++;
                for (var i = 0; i < 2; i++)
                {
                    await sides[i].Client.CommitAsync(received[i]);
                }

                continue;
            }

            // Given back (nacked, or in flight when the member goes) after its last delivery, a message is dead-lettered.
            if (received[0].DeliveryCount == Member.MaxDeliver)
            {
                (settled, deadLetters) = (settled + 1, deadLetters + 1);
            }

            if (deliveries == DisruptAt)
            {
                foreach (var side in sides)
                {
                    await side.DisruptAsync();
                }
            }
            else if (roll < 90)
            {
                for (var i = 0; i < 2; i++)
                {
                    await sides[i].Client.NackAsync(received[i]);
                }
            }
            else
            {
                foreach (var side in sides)
                {
                    await side.ResubscribeAsync();
                }
            }
        }

        deadLetters.ShouldBeGreaterThan(0, "the script dead-letters some");
        var dead = new List<string>[2];
        for (var i = 0; i < 2; i++)
        {
            var letters = await sides[i].Client.SubscribeAsync("jobs.dead", new SubscribeOptions { AckPolicy = AckPolicy.None });
            dead[i] = (await ReconnectTests.ReadAsync(letters, deadLetters)).Select(message =>
                $"{message.Headers.GetText("zaichik-dead-letter-sequence")} after {message.Headers.GetText("zaichik-delivery-count")}: {message.PayloadText}").ToList();
        }

        dead[1].ShouldBe(dead[0]);
    }

    /// <summary>One broker (or cluster) with the group's member.</summary>
    internal abstract class GroupSide : IAsyncDisposable
    {
        private ZaichikClient? _client;
        private ZaichikSubscription? _subscription;

        public ZaichikClient Client => _client ?? throw new InvalidOperationException("not started");

        public ZaichikSubscription Subscription => _subscription ?? throw new InvalidOperationException("not subscribed");

        public async Task StartAsync()
        {
            _client = await ConnectAsync();
            await Client.CreateTopicAsync("jobs", Retained);
            for (var i = 1; i <= Messages; i++)
            {
                await Client.PublishAsync("jobs", $"job {i}");
            }

            _subscription = await Client.SubscribeAsync("jobs", Member);
        }

        /// <summary>The member leaves with its delivery in flight and comes back.</summary>
        public async Task ResubscribeAsync()
        {
            await Subscription.DisposeAsync();
            await Client.ConfirmCommitsAsync();
            _subscription = await Client.SubscribeAsync("jobs", Member);
        }

        /// <summary>The member's connection goes (what else goes is the side's), and it joins again on a new one.</summary>
        public async Task DisruptAsync()
        {
            await Client.ConfirmCommitsAsync();
            await Client.DisposeAsync();
            await AfterDisconnectAsync();
            _client = await ConnectAsync();
            _subscription = await Client.SubscribeAsync("jobs", Member);
        }

        public async ValueTask DisposeAsync()
        {
            if (_client is not null)
            {
                await _client.DisposeAsync();
            }
        }

        protected abstract Task<ZaichikClient> ConnectAsync();

        /// <summary>What happens between the member's connection closing and its next one.</summary>
        protected abstract Task AfterDisconnectAsync();
    }

    /// <summary>A single broker whose member's connection drops, or that restarts.</summary>
    internal sealed class SingleBroker(TestServer server, bool restart) : GroupSide
    {
        protected override async Task<ZaichikClient> ConnectAsync() => await server.ConnectAsync();

        protected override async Task AfterDisconnectAsync()
        {
            if (restart)
            {
                await server.RestartAsync();
            }
            else
            {
                await TestServer.EventuallyAsync(() => server.State.Server().Connections == 0, "the member's connection is gone");
            }
        }
    }
}
