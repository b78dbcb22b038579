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

        // Every setting that decides what is stored and kept across a restart, with times long enough to play no part.
        var hour = TimeSpan.FromHours(1);
        (string Name, TopicOptions Options)[] topics =
        [
            ("plain", new TopicOptions { RetentionTtl = hour, Durability = durability }),
            ("window", new TopicOptions { RetentionTtl = hour, CompactionWindow = hour, Durability = durability }),
            ("latest", new TopicOptions { RetentionTtl = hour, KeepLatestPerKey = true, Durability = durability }),
            ("capped", new TopicOptions { RetentionTtl = hour, MaxMessages = 25, Durability = durability }),
            ("capped-window", new TopicOptions { RetentionTtl = hour, CompactionWindow = hour, MaxMessages = 10, Durability = durability }),
        ];
        foreach (var (name, options) in topics)
        {
            await reference.CreateTopicAsync(name, options);
            await subject.CreateTopicAsync(name, options);
        }

        // A durable consumer commits some of "plain" before the restart.
        foreach (var client in new[] { reference, subject })
        {
            await client.PublishAsync("plain", "first");
            await client.PublishAsync("plain", "second");
            await using var consumer = new MessageReader(await client.SubscribeAsync("plain", new SubscribeOptions { DurableName = "billing", From = StartPosition.Retained }));
            await client.CommitAsync((await consumer.NextAsync(1))[0]);
        }

        var random = new Random(20261130);
        string?[] keys = [null, null, "", "a", "b", "c", "d", "e"];
        for (var i = 0; i < 400; i++)
        {
            if (i == 200)
            {
                await restarted.RestartAsync();
                subject = await restarted.ConnectAsync();
            }

            var topic = topics[random.Next(topics.Length)].Name;
            var key = keys[random.Next(keys.Length)];
            PublishResult expected, actual;
            string what;
            if (topic == "latest" && key is { Length: > 0 } && random.Next(5) == 0)
            {
                what = $"tombstone {i} for '{key}'";
                expected = await reference.PublishTombstoneAsync(topic, key);
                actual = await subject.PublishTombstoneAsync(topic, key);
            }
            else
            {
                var payload = random.Next(8) == 0 ? string.Empty : $"p{i}";
                var headers = random.Next(3) == 0 ? new ZaichikHeaders().Add("h", $"v{i}") : null;
                what = $"publish {i} to {topic}, key {(key is null ? "none" : $"'{key}'")}";
                expected = await reference.PublishAsync(topic, payload, key, headers);
                actual = await subject.PublishAsync(topic, payload, key, headers);
            }

            (actual.Sequence, actual.Duplicate).ShouldBe((expected.Sequence, expected.Duplicate), what);
        }

        // Count limits are applied by the sweep (every SweepInterval): compare once both have swept.
        foreach (var (name, _) in topics)
        {
            List<string> wanted = [], stored = [];
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            while (!deadline.IsCancellationRequested)
            {
                wanted = Project(await PeekAsync(steady, name));
                stored = Project(await PeekAsync(restarted, name));
                if (wanted.Count > 0 && stored.SequenceEqual(wanted))
                {
                    break;
                }

                await Task.Delay(50, CancellationToken.None);
            }

            wanted.ShouldNotBeEmpty(name);
            stored.ShouldBe(wanted, name);
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

    private static async Task<IReadOnlyList<Zaichik.Server.State.PeekedMessage>> PeekAsync(TestServer server, string topic) =>
        (await server.State.PeekAsync(topic, null, 10_000, "text", CancellationToken.None))?.Messages ?? [];

    private static List<string> Project(IReadOnlyList<Zaichik.Server.State.PeekedMessage> messages) =>
        messages.Select(message =>
            $"{message.Sequence} key={(message.Key is null ? "none" : $"'{message.Key}'")} payload='{message.Payload}' "
            + string.Join(",", message.Headers.Select(header => $"{header.Key}={header.Value}"))).ToList();
}
