using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Tests.Client;

namespace Zaichik.Tests.EndToEnd;

/// <summary>
/// A restart must change nothing a client can see: the same random publishes to a broker that restarts halfway and to
/// one that does not must get the same Acks, leave the same messages and resume a durable consumer at the same place.
/// </summary>
public sealed class RestartDifferentialTests
{
    [Theory]
    [InlineData(Durability.Always)]
    [InlineData(Durability.Interval)]
    public async Task A_broker_that_restarts_halfway_answers_and_stores_exactly_what_one_that_did_not_does(Durability durability)
    {
        await using var steady = await TestServer.StartAsync();
        await using var restarted = await TestServer.StartAsync();
        var reference = await steady.ConnectAsync();
        var subject = await restarted.ConnectAsync();

        var topics = RandomPublishes.Topics(durability);
        await RandomPublishes.CreateAsync(reference, subject, topics);

        // A durable consumer commits some of "plain" before the restart.
        foreach (var client in new[] { reference, subject })
        {
            await client.PublishAsync("plain", "first");
            await client.PublishAsync("plain", "second");
            await using var consumer = new MessageReader(await client.SubscribeAsync("plain", new SubscribeOptions { DurableName = "billing", From = StartPosition.Retained }));
            await client.CommitAsync((await consumer.NextAsync(1))[0]);
        }

        var publishes = new RandomPublishes(20261130);
        for (var i = 0; i < 400; i++)
        {
            if (i == 200)
            {
                // Swept first: the restart must then remember keys whose messages the count limit removed.
                await RandomPublishes.SweptAsync(restarted.State, topics);
                await restarted.RestartAsync();
                subject = await restarted.ConnectAsync();
            }

            await publishes.NextAsync(i, reference, subject, topics);
        }

        foreach (var (name, _) in topics)
        {
            await RandomPublishes.ShouldStoreTheSameAsync(steady.State, restarted.State, name, name);
        }

        // The durable consumer resumes after "first" on both.
        var resumed = new List<long>[2];
        var clients = new[] { reference, subject };
        for (var side = 0; side < 2; side++)
        {
            await using var consumer = new MessageReader(await clients[side].SubscribeAsync("plain", new SubscribeOptions { DurableName = "billing", Prefetch = 5 }));
            resumed[side] = (await consumer.NextAsync(5)).Select(message => message.Sequence).ToList();
        }

        resumed[0][0].ShouldBe(2, "the reference resumes right after its commit");
        resumed[1].ShouldBe(resumed[0]);
    }
}
