using Microsoft.Extensions.Time.Testing;
using Zaichik.Client;
using Zaichik.Server.Hosting;
using Zaichik.Server.Storage;

namespace Zaichik.Tests.EndToEnd;

/// <summary>
/// The broker against a model of what its topics promise over time: random publishes (keyed, unkeyed, tombstones),
/// clock moves (many to the exact millisecond where a retention, a key window or a tombstone's retention runs out, or
/// one before it), sweeps, idle closes and restarts. Every Ack must be the model's (stored with the next sequence, or a
/// duplicate of the model's original), a subscriber from the start must receive exactly what the model says is
/// retained, in order, and a durable consumer what it retains after the consumer's last commit. The differential tests
/// keep time out of play; this one is about time.
/// </summary>
public sealed class TimedModelTests
{
    private static readonly string?[] Keys = [null, "a", "b", "c", "d"];

    private static readonly ModelTopic[] Topics =
    [
        new("ttl", new TopicOptions { RetentionTtl = TimeSpan.FromSeconds(5) }),
        new("window", new TopicOptions { RetentionTtl = TimeSpan.FromSeconds(30), CompactionWindow = TimeSpan.FromSeconds(3) }),

        // A key window longer than the retention: the keys of expired messages are remembered after the sweep removed
        // them, and across restarts (the topic's windows file).
        new("window-outlives", new TopicOptions { RetentionTtl = TimeSpan.FromSeconds(2), CompactionWindow = TimeSpan.FromSeconds(7) }),
        new("capped", new TopicOptions { RetentionTtl = TimeSpan.FromSeconds(30), CompactionWindow = TimeSpan.FromSeconds(6), MaxMessages = 4 }),
        new("latest", new TopicOptions { RetentionTtl = TimeSpan.FromSeconds(4), KeepLatestPerKey = true, TombstoneRetention = TimeSpan.FromSeconds(3) }),
        new("latest-window", new TopicOptions
        {
            RetentionTtl = TimeSpan.FromSeconds(6), KeepLatestPerKey = true, TombstoneRetention = TimeSpan.FromSeconds(2), CompactionWindow = TimeSpan.FromSeconds(3),
        }),
    ];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public async Task Acks_and_what_subscribers_and_durable_consumers_receive_follow_the_model_as_time_passes(int seed)
    {
        await RunAsync(seed, steps: 300, maxRestarts: 8);
    }

    /// <summary>
    /// The same with storage and limits tight enough that every path runs with a few dozen messages: 4 KiB pages and
    /// segments (payloads up to 1.5 KiB, so messages span pages and segments are deleted), two open topics at most (the
    /// others are closed and reopened all the time), topics idle after 2 s, and compaction by size from the first bytes.
    /// </summary>
    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    public async Task The_model_holds_with_small_pages_few_open_topics_and_eager_compaction(int seed)
    {
        await RunAsync(seed, steps: 300, maxRestarts: 8, Tight);
    }

    /// <summary>Many more seeds, for looking; not part of a normal run.</summary>
    [Cluster.SoakFact]
    [Trait("Category", "Soak")]
    public async Task Many_seeds()
    {
        // ZAICHIK_MODEL_SEED=n runs that seed alone.
        var only = int.TryParse(Environment.GetEnvironmentVariable("ZAICHIK_MODEL_SEED"), out var chosen) ? chosen : (int?)null;
        var count = int.TryParse(Environment.GetEnvironmentVariable("ZAICHIK_MODEL_COUNT"), out var seeds) ? seeds : 100;
        for (var seed = only ?? 100; seed < (only + 1 ?? 100 + count); seed++)
        {
            if (Environment.GetEnvironmentVariable("ZAICHIK_MODEL_TIGHT") != "only")
            {
                await RunAsync(seed, steps: 400, maxRestarts: 10);
            }

            if (Environment.GetEnvironmentVariable("ZAICHIK_MODEL_TIGHT") != "no")
            {
                await RunAsync(seed, steps: 400, maxRestarts: 10, Tight);
            }
        }
    }

    private static ZaichikServerOptions Tight(ZaichikServerOptions options) => options with
    {
        Storage = new StorageOptions { PageSizeBits = 12, MemorySizeBits = 14, SegmentSizeBits = 12 },
        MaxPayloadSize = 2048,
        MaxOpenTopics = 3,
        TopicIdleTimeout = TimeSpan.FromSeconds(2),
        MinCompactionBytes = 1,
        MinCleanableDirtyRatio = 0.01,
    };

    private static async Task RunAsync(int seed, int steps, int maxRestarts, Func<ZaichikServerOptions, ZaichikServerOptions>? configure = null)
    {
        var random = new Random(seed);
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000));
        var tight = configure is not null;
        await using var server = await TestServer.StartAsync(configure, time);
        var client = await server.ConnectAsync();
        var models = Topics.ToDictionary(topic => topic.Name, topic => new TopicModel(topic.Options));
        foreach (var topic in Topics)
        {
            await client.CreateTopicAsync(topic.Name, topic.Options);
        }

        var history = new List<string>();
        if (tight)
        {
            history.Add("tight: 4 KiB pages and segments, MaxOpenTopics 3, idle after 2 s, eager compaction");
        }

        var restarts = 0;
        var payloads = 0;
        for (var step = 0; step < steps; step++)
        {
            var roll = random.Next(100);
            var topic = Topics[random.Next(Topics.Length)];
            var model = models[topic.Name];
            var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
            if (roll < 55)
            {
                var key = Keys[random.Next(Keys.Length)];
                var tombstone = key is not null && topic.Options.KeepLatestPerKey && random.Next(4) == 0;
                var payload = tombstone ? string.Empty : $"p{++payloads}" + (tight ? new string('x', random.Next(1_500)) : string.Empty);
                history.Add($"{step}: {(tombstone ? "tombstone" : "publish")} {topic.Name} key {Describe(key)} at {nowMs}");
                var expected = model.Publish(key, payload, tombstone, nowMs);
                var actual = tombstone ? await client.PublishTombstoneAsync(topic.Name, key!) : await client.PublishAsync(topic.Name, payload, key);
                (actual.Sequence, actual.Duplicate).ShouldBe(expected, Because(seed, history));
            }
            else if (roll < 78)
            {
                var advance = ChooseAdvance(random, models.Values, nowMs);
                history.Add($"{step}: advance {advance} ms");
                time.Advance(TimeSpan.FromMilliseconds(advance));
            }
            else if (roll < 84)
            {
                history.Add($"{step}: sweep");
                await server.Maintenance.SweepAllAsync(CancellationToken.None);
            }
            else if (roll < 89 && restarts < maxRestarts)
            {
                restarts++;
                history.Add($"{step}: restart");
                await server.RestartAsync();
                client = await server.ConnectAsync();
            }
            else if (roll < 94)
            {
                history.Add($"{step}: check {topic.Name} at {nowMs}");
                await CheckAsync(client, topic, model, nowMs, $"p{++payloads}", Because(seed, history));
            }
            else
            {
                var commitAt = random.NextDouble();
                history.Add($"{step}: durable consumer of {topic.Name} at {nowMs} (after {model.Committed?.ToString() ?? "nothing"}), commits {commitAt:F2} of what it reads");
                await ConsumeDurablyAsync(client, topic, model, nowMs, $"p{++payloads}", commitAt, Because(seed, history));
            }
        }

        foreach (var topic in Topics)
        {
            await CheckAsync(client, topic, models[topic.Name], time.GetUtcNow().ToUnixTimeMilliseconds(), $"p{++payloads}", Because(seed, history));
        }
    }

    /// <summary>
    /// Publishes an unkeyed marker (a publish like any other, in the model too), subscribes from the start, and reads up
    /// to the marker: what arrives must be what the model retains, in order.
    /// </summary>
    private static async Task CheckAsync(ZaichikClient client, ModelTopic topic, TopicModel model, long nowMs, string marker, string because)
    {
        var (sequence, _) = model.Publish(null, marker, tombstone: false, nowMs);
        (await client.PublishAsync(topic.Name, marker)).Sequence.ShouldBe(sequence, because);
        var expected = model.Retained(nowMs).Select(Describe).ToList();

        var received = new List<string>();
        await using (var reader = new MessageReader(await client.SubscribeAsync(topic.Name, new SubscribeOptions { Prefetch = 100, AutoCommit = true })))
        {
            while (true)
            {
                var message = await reader.NextAsync();
                received.Add($"{message.Sequence}:{Describe(message.KeyText)}:{message.PayloadText}");
                if (message.Sequence >= sequence)
                {
                    break;
                }
            }
        }

        ShouldMatch(topic, expected, received, because);
    }

    private static void ShouldMatch(ModelTopic topic, List<string> expected, List<string> received, string because)
    {
        if (topic.Options.MaxMessages > 0)
        {
            // The sweep (on its timer as well as when the test runs it) may have removed the oldest beyond the count
            // limit: what arrives is the end of what the model retains, never less than the limit's worth.
            received.Count.ShouldBeGreaterThanOrEqualTo((int)Math.Min(topic.Options.MaxMessages, expected.Count), $"{topic.Name}: received [{string.Join(", ", received)}]; {because}");
            received.ShouldBe(expected.TakeLast(received.Count).ToList(), $"{topic.Name}: expected the end of [{string.Join(", ", expected)}]; {because}");
        }
        else
        {
            received.ShouldBe(expected, $"{topic.Name}: {because}");
        }
    }

    private static string Describe(ModelMessage message) => $"{message.Sequence}:{Describe(message.Key)}:{message.Payload}";

    /// <summary>
    /// A durable consumer of the topic resumes (or starts, from the retained messages), reads up to a new marker and
    /// commits the message a fraction <paramref name="commitAt"/> along what it read (none below 0.2): it must resume
    /// after its last commit, at the first message still retained, and receive what the model retains from there.
    /// </summary>
    private static async Task ConsumeDurablyAsync(ZaichikClient client, ModelTopic topic, TopicModel model, long nowMs, string marker, double commitAt, string because)
    {
        var (sequence, _) = model.Publish(null, marker, tombstone: false, nowMs);
        (await client.PublishAsync(topic.Name, marker)).Sequence.ShouldBe(sequence, because);
        var expected = model.Retained(nowMs).Where(message => message.Sequence > (model.Committed ?? 0)).Select(Describe).ToList();

        var received = new List<string>();
        var sequences = new List<long>();
        var options = new SubscribeOptions { DurableName = "consumer", Prefetch = 10_000 };
        await using (var reader = new MessageReader(await client.SubscribeAsync(topic.Name, options)))
        {
            while (true)
            {
                var message = await reader.NextAsync();
                received.Add($"{message.Sequence}:{Describe(message.KeyText)}:{message.PayloadText}");
                sequences.Add(message.Sequence);
                if (message.Sequence >= sequence)
                {
                    break;
                }
            }

            if (commitAt >= 0.2)
            {
                var committed = sequences[(int)((sequences.Count - 1) * (commitAt - 0.2) / 0.8)];
                await client.CommitAsync(topic.Name, committed);
                model.Committed = committed;
            }
        }

        ShouldMatch(topic, expected, received, $"durable consumer after {model.Committed}; {because}");
    }

    /// <summary>A clock move: often exactly to where something in a model runs out (or a millisecond before), else random.</summary>
    private static long ChooseAdvance(Random random, IEnumerable<TopicModel> models, long nowMs)
    {
        var deadlines = models.SelectMany(model => model.Deadlines()).Where(deadline => deadline > nowMs).ToList();
        if (deadlines.Count > 0 && random.Next(3) != 0)
        {
            var deadline = deadlines[random.Next(deadlines.Count)] - random.Next(2);
            return Math.Max(1, deadline - nowMs);
        }

        return random.Next(4) == 0 ? 1 : random.Next(1, 2_500);
    }

    private static string Because(int seed, List<string> history) =>
        $"seed {seed}{(history.Count > 0 && history[0].StartsWith("tight", StringComparison.Ordinal) ? " (tight)" : string.Empty)}, after:\n{string.Join("\n", history.TakeLast(60))}";

    private static string Describe(string? key) => key is null ? "none" : $"'{key}'";

    private sealed record ModelTopic(string Name, TopicOptions Options);

    private sealed record ModelMessage(long Sequence, string? Key, string Payload, bool Tombstone, long TimestampMs);

    /// <summary>What a topic promises, written down as plainly as the README and docs/protocol.md state it.</summary>
    private sealed class TopicModel(TopicOptions options)
    {
        private readonly List<ModelMessage> _stored = [];
        private readonly Dictionary<string, ModelMessage> _accepted = [];
        private long _lastSequence;

        /// <summary>The position the topic's durable consumer last committed; null before its first commit.</summary>
        public long? Committed { get; set; }

        private long RetentionMs => (long)options.RetentionTtl.TotalMilliseconds;

        private long WindowMs => (long)options.CompactionWindow.TotalMilliseconds;

        private long TombstoneMs => (long)options.TombstoneRetention.TotalMilliseconds;

        /// <summary>
        /// The Ack a publish must get: a keyed message whose key was accepted less than the window ago is a duplicate of
        /// that message (and does not extend the window); anything else is stored with the next sequence.
        /// </summary>
        public (long Sequence, bool Duplicate) Publish(string? key, string payload, bool tombstone, long nowMs)
        {
            if (key is not null && WindowMs > 0 && _accepted.TryGetValue(key, out var original) && nowMs - original.TimestampMs < WindowMs)
            {
                return (original.Sequence, true);
            }

            var message = new ModelMessage(++_lastSequence, key, payload, tombstone, nowMs);
            _stored.Add(message);
            if (key is not null)
            {
                _accepted[key] = message;
            }

            return (message.Sequence, false);
        }

        /// <summary>What a subscriber from the start receives at <paramref name="nowMs"/>, in order.</summary>
        public IEnumerable<ModelMessage> Retained(long nowMs) => _stored.Where(message => IsDelivered(message, nowMs));

        /// <summary>The times at which something this model holds changes: expiries and the ends of key windows.</summary>
        public IEnumerable<long> Deadlines()
        {
            foreach (var message in _stored)
            {
                if (!options.KeepLatestPerKey || message.Key is null)
                {
                    yield return message.TimestampMs + RetentionMs;
                }
                else if (message.Tombstone)
                {
                    yield return message.TimestampMs + TombstoneMs;
                }
            }

            if (WindowMs > 0)
            {
                foreach (var accepted in _accepted.Values)
                {
                    yield return accepted.TimestampMs + WindowMs;
                }
            }
        }

        private bool IsDelivered(ModelMessage message, long nowMs)
        {
            if (!options.KeepLatestPerKey)
            {
                return nowMs - message.TimestampMs < RetentionMs;
            }

            if (message.Key is null)
            {
                return nowMs - message.TimestampMs < RetentionMs;
            }

            // The newest value of its key, whatever its age; a tombstone only until its retention has passed.
            return _accepted[message.Key] == message && (!message.Tombstone || nowMs - message.TimestampMs < TombstoneMs);
        }
    }
}
