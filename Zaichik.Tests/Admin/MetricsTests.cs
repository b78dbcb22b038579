using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Tests.Admin;

/// <summary>
/// Meters and activity listeners are process-wide: these tests run alone, after the parallel ones, so that the only
/// <c>Zaichik.Server</c> Meter alive is their broker's and the figures they read are exactly their own traffic's.
/// </summary>
[CollectionDefinition(nameof(ProcessWideTelemetry), DisableParallelization = true)]
public sealed class ProcessWideTelemetry;

[Collection(nameof(ProcessWideTelemetry))]
public sealed partial class MetricsTests
{
    [Fact]
    public async Task Prometheus_text_has_every_instrument_with_the_traffic_just_made()
    {
        await using var admin = await AdminTestServer.StartAsync(options => options with { MaxPayloadSize = 1024 });
        await using var publisher = await admin.Broker.ConnectAsync();
        await publisher.CreateTopicAsync("metered", new TopicOptions
        {
            RetentionTtl = TimeSpan.FromHours(1), CompactionWindow = TimeSpan.FromMinutes(1), Durability = Durability.Always,
        });
        for (var i = 0; i < 20; i++)
        {
            await publisher.PublishAsync("metered", $"reading {i}", key: $"sensor-{i % 15}");
        }

        await Should.ThrowAsync<ZaichikServerException>(async () => await publisher.PublishAsync("metered", new byte[2048]));

        await using var consumer = await admin.Broker.ConnectAsync();
        var subscription = await consumer.SubscribeAsync("metered", new SubscribeOptions { DurableName = "dashboard", From = StartPosition.Sequence(1), Prefetch = 5 });
        var received = await Client.ReconnectTests.ReadAsync(subscription, 5);

        // Five delivered and none committed: the prefetch window is full, so nothing more moves until the commit.
        var text = await admin.Http.GetStringAsync("/metrics");

        Value(text, "zaichik_messages_in_total").ShouldBe(15);
        Value(text, "zaichik_duplicates_dropped_total").ShouldBe(5);
        Value(text, "zaichik_publishes_total", "result=\"stored\"").ShouldBe(15);
        Value(text, "zaichik_publishes_total", "result=\"duplicate\"").ShouldBe(5);
        Value(text, "zaichik_publishes_total", "result=\"PayloadTooLarge\"").ShouldBe(1);
        Value(text, "zaichik_messages_out_total").ShouldBe(5);
        Value(text, "zaichik_bytes_in_bytes_total").ShouldBeGreaterThan(15 * "reading 0".Length);
        Value(text, "zaichik_bytes_out_bytes_total").ShouldBeGreaterThan(0);
        Value(text, "zaichik_connections").ShouldBe(2);
        Value(text, "zaichik_subscriptions").ShouldBe(1);
        Value(text, "zaichik_topics", "state=\"open\"").ShouldBe(1);
        Value(text, "zaichik_messages_expired_total").ShouldBe(0);
        Value(text, "zaichik_consumer_lag", "consumer=\"dashboard\"").ShouldBe(15);
        Value(text, "zaichik_flush_duration_seconds_count").ShouldBeGreaterThan(0, "Always publishes were flushed");

        await consumer.CommitAsync(received[^1]);
        await consumer.ConfirmCommitsAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (Value(await admin.Http.GetStringAsync("/metrics", deadline.Token), "zaichik_consumer_lag", "consumer=\"dashboard\"") != 10)
        {
            await Task.Delay(50, deadline.Token);
        }
    }

    [Fact]
    public async Task Group_redeliveries_dead_letters_and_lag_are_counted_and_shown_by_the_api()
    {
        await using var admin = await AdminTestServer.StartAsync();
        await using var client = await admin.Broker.ConnectAsync();
        await client.CreateTopicAsync("work", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        for (var i = 0; i < 4; i++)
        {
            await client.PublishAsync("work", $"job {i}");
        }

        var subscription = await client.SubscribeAsync("work", new SubscribeOptions { Group = "crew", MaxDeliver = 2, DeadLetterTopic = "work.dead" });
        var first = (await Client.ReconnectTests.ReadAsync(subscription, 1))[0];
        await client.NackAsync(first);
        var second = (await Client.ReconnectTests.ReadAsync(subscription, 1))[0];
        second.Sequence.ShouldBe(first.Sequence);
        await client.NackAsync(second);
        var next = (await Client.ReconnectTests.ReadAsync(subscription, 1))[0];
        next.Sequence.ShouldBe(2, "the first message went to the dead letters after two deliveries");

        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        string text;
        while (Value(text = await admin.Http.GetStringAsync("/metrics", deadline.Token), "zaichik_messages_dead_lettered_total") != 1)
        {
            await Task.Delay(50, deadline.Token);
        }

        Value(text, "zaichik_messages_redelivered_total").ShouldBe(1);
        Value(text, "zaichik_consumer_lag", "group=\"crew\"").ShouldBe(3, "messages 2 to 4 are not done");

        var groups = System.Text.Json.JsonDocument.Parse(await admin.Http.GetStringAsync("/api/groups?topic=work", deadline.Token)).RootElement;
        groups.GetArrayLength().ShouldBe(1);
        var crew = groups[0];
        crew.GetProperty("name").GetString().ShouldBe("crew");
        crew.GetProperty("members").GetInt32().ShouldBe(1);
        crew.GetProperty("doneSequence").GetInt64().ShouldBe(1);
        crew.GetProperty("pending").GetInt32().ShouldBe(1);
        crew.GetProperty("maxDeliver").GetInt64().ShouldBe(2);
        crew.GetProperty("deadLetterTopic").GetString().ShouldBe("work.dead");
        crew.GetProperty("ackWaitMs").GetInt64().ShouldBe(30_000, "the server's default AckWait");
        crew.GetProperty("deadLettered").GetInt64().ShouldBe(1);

        var topic = System.Text.Json.JsonDocument.Parse(await admin.Http.GetStringAsync("/api/topics/work", deadline.Token)).RootElement;
        topic.GetProperty("groups")[0].GetProperty("name").GetString().ShouldBe("crew");
    }

    [Fact]
    public async Task Publish_and_delivery_spans_continue_the_producers_trace()
    {
        const string topic = "traced-through-the-broker";
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is "Zaichik.Server" or ZaichikTelemetry.ActivitySourceName or "test-app",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (activity.DisplayName.StartsWith(topic, StringComparison.Ordinal) || activity.Source.Name == "test-app")
                {
                    spans.Enqueue(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        using var app = new ActivitySource("test-app");

        await using var admin = await AdminTestServer.StartAsync();
        await using var client = await admin.Broker.ConnectAsync();
        await client.CreateTopicAsync(topic, new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        ActivityTraceId trace;
        using (var root = app.StartActivity("checkout"))
        {
            trace = root!.TraceId;
            await client.PublishAsync(topic, "order");
        }

        var subscription = await client.SubscribeAsync(topic, new SubscribeOptions { From = StartPosition.Sequence(1) });
        await Client.ReconnectTests.ReadAsync(subscription, 1);

        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!spans.Any(span => span.Source.Name == "Zaichik.Server" && span.DisplayName == $"{topic} deliver"))
        {
            await Task.Delay(10, deadline.Token);
        }

        var server = spans.Where(span => span.Source.Name == "Zaichik.Server").ToArray();
        var publish = server.Single(span => span.DisplayName == $"{topic} publish");
        publish.TraceId.ShouldBe(trace, "the broker's publish span continues the producer's trace");
        publish.Kind.ShouldBe(ActivityKind.Server);
        publish.GetTagItem("messaging.message.id").ShouldBe(1L);
        var deliver = server.Single(span => span.DisplayName == $"{topic} deliver");
        deliver.TraceId.ShouldBe(trace);
        deliver.GetTagItem("messaging.destination.name").ShouldBe(topic);
    }

    /// <summary>The value of the one series of <paramref name="metric"/> whose labels contain <paramref name="label"/>.</summary>
    internal static double Value(string text, string metric, string? label = null)
    {
        var values = text.Split('\n')
            .Select(line => SeriesLine().Match(line))
            .Where(match => match.Success && match.Groups["name"].Value == metric && (label is null || match.Groups["labels"].Value.Contains(label, StringComparison.Ordinal)))
            .Select(match => double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture))
            .ToArray();
        values.Length.ShouldBe(1, $"one series of {metric} {label} in:\n{text}");
        return values[0];
    }

    [GeneratedRegex(@"^(?<name>[a-z_]+)(\{(?<labels>[^}]*)\})? (?<value>[-+0-9.eE]+|NaN)")]
    private static partial Regex SeriesLine();
}
