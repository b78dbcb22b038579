using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Tests.EndToEnd;

/// <summary>
/// What the differential tests send to a reference broker and to the one under test: topics with every setting that
/// decides what is stored, and random publishes to them (keyed, unkeyed and <c>""</c> keys, empty payloads, headers,
/// tombstones), each sent to both and required to get the same Ack.
/// </summary>
internal sealed class RandomPublishes(int seed)
{
    private static readonly string?[] Keys = [null, null, "", "a", "b", "c", "d", "e"];

    private readonly Random _random = new(seed);

    /// <summary>The topics, with windows and retention long enough that time plays no part.</summary>
    public static (string Name, TopicOptions Options)[] Topics(Durability durability = Durability.ServerDefault)
    {
        var hour = TimeSpan.FromHours(1);
        return
        [
            ("plain", new TopicOptions { RetentionTtl = hour, Durability = durability }),
            ("window", new TopicOptions { RetentionTtl = hour, CompactionWindow = hour, Durability = durability }),
            ("latest", new TopicOptions { RetentionTtl = hour, KeepLatestPerKey = true, Durability = durability }),
            ("capped", new TopicOptions { RetentionTtl = hour, MaxMessages = 25, Durability = durability }),

            // A key window that outlives the messages a count limit removes: what the window remembers of them must
            // survive a restart and a cluster node's start from a snapshot (the topic's window file).
            ("capped-window", new TopicOptions { RetentionTtl = hour, CompactionWindow = hour, MaxMessages = 10, Durability = durability }),
        ];
    }

    /// <summary>Creates the topics on both.</summary>
    public static async Task CreateAsync(ZaichikClient reference, ZaichikClient subject, (string Name, TopicOptions Options)[] topics)
    {
        foreach (var (name, options) in topics)
        {
            await reference.CreateTopicAsync(name, options);
            await subject.CreateTopicAsync(name, options);
        }
    }

    /// <summary>Publish number <paramref name="i"/>: to a random topic, to both, with the same Ack required of each.</summary>
    public async Task NextAsync(int i, ZaichikClient reference, ZaichikClient subject, (string Name, TopicOptions Options)[] topics)
    {
        var topic = topics[_random.Next(topics.Length)].Name;
        var key = Keys[_random.Next(Keys.Length)];
        PublishResult expected, actual;
        string what;
        if (topic == "latest" && key is { Length: > 0 } && _random.Next(5) == 0)
        {
            what = $"tombstone {i} for '{key}'";
            expected = await reference.PublishTombstoneAsync(topic, key);
            actual = await subject.PublishTombstoneAsync(topic, key);
        }
        else
        {
            var payload = _random.Next(8) == 0 ? string.Empty : $"p{i}";
            var headers = _random.Next(3) == 0 ? new ZaichikHeaders().Add("h", $"v{i}") : null;
            what = $"publish {i} to {topic}, key {(key is null ? "none" : $"'{key}'")}";
            expected = await reference.PublishAsync(topic, payload, key, headers);
            actual = await subject.PublishAsync(topic, payload, key, headers);
        }

        (actual.Sequence, actual.Duplicate).ShouldBe((expected.Sequence, expected.Duplicate), what);
    }

    /// <summary>
    /// Waits until <paramref name="subject"/> stores what <paramref name="reference"/> does in <paramref name="topic"/>
    /// (count limits are applied by each broker's sweep, every SweepInterval), then requires it.
    /// </summary>
    public static async Task ShouldStoreTheSameAsync(Zaichik.Server.State.BrokerState reference, Zaichik.Server.State.BrokerState subject, string topic, string what)
    {
        List<string> wanted = [], stored = [];
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!deadline.IsCancellationRequested)
        {
            wanted = Project(await PeekAsync(reference, topic));
            stored = Project(await PeekAsync(subject, topic));
            if (wanted.Count > 0 && stored.SequenceEqual(wanted))
            {
                break;
            }

            await Task.Delay(50, CancellationToken.None);
        }

        wanted.ShouldNotBeEmpty(what);
        stored.ShouldBe(wanted, what);
    }

    /// <summary>
    /// Waits until <paramref name="state"/>'s sweep has applied every count limit of <paramref name="topics"/>, so that
    /// what a restart right after must remember of removed messages does not depend on the sweep's timing.
    /// </summary>
    public static async Task SweptAsync(Zaichik.Server.State.BrokerState state, (string Name, TopicOptions Options)[] topics)
    {
        foreach (var (name, options) in topics)
        {
            var max = options.MaxMessages;
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            while (max > 0 && (await PeekAsync(state, name)).Count > max)
            {
                await Task.Delay(50, deadline.Token);
            }
        }
    }

    private static async Task<IReadOnlyList<Zaichik.Server.State.PeekedMessage>> PeekAsync(Zaichik.Server.State.BrokerState state, string topic) =>
        (await state.PeekAsync(topic, null, 10_000, "text", CancellationToken.None))?.Messages ?? [];

    /// <summary>A stored message as the two must agree on it: everything but the time it was stored.</summary>
    private static List<string> Project(IReadOnlyList<Zaichik.Server.State.PeekedMessage> messages) =>
        messages.Select(message =>
            $"{message.Sequence} key={(message.Key is null ? "none" : $"'{message.Key}'")} payload='{message.Payload}' "
            + string.Join(",", message.Headers.Select(header => $"{header.Key}={header.Value}"))).ToList();
}
