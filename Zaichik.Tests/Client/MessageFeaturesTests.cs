using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Shouldly;
using Xunit;
using Zaichik.Client;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Client;

/// <summary>Headers, typed payloads, traces and metrics, end to end through a real broker.</summary>
public sealed class MessageFeaturesTests
{
    [Fact]
    public async Task Headers_are_stored_and_delivered_live_and_on_replay_after_a_restart()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("headed", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        await using var live = await client.SubscribeAsync("headed", new SubscribeOptions { Prefetch = 10, AutoCommit = true });
        var headers = new ZaichikHeaders().Add("content-type", "text/plain").Add("blob", [0, 1, 2, 255]).Add("content-type", "second");

        await client.PublishAsync("headed", "body", "key", headers);
        await client.PublishAsync("headed", "plain");

        var received = await ReconnectTests.ReadAsync(live, 2);
        AssertHeaders(received[0].Headers);
        received[1].Headers.Count.ShouldBe(0);
        await server.RestartAsync();
        var again = await server.ConnectAsync();
        await using var replay = await again.SubscribeAsync("headed", new SubscribeOptions { Prefetch = 10, AutoCommit = true });
        var replayed = await ReconnectTests.ReadAsync(replay, 2);
        AssertHeaders(replayed[0].Headers);
        replayed[0].KeyText.ShouldBe("key");
        replayed[0].PayloadText.ShouldBe("body");

        static void AssertHeaders(ZaichikHeaders headers)
        {
            headers.Count.ShouldBe(3);
            headers.GetText("content-type").ShouldBe("text/plain", "the first of a repeated key");
            headers[2].Text.ShouldBe("second");
            headers.TryGetBytes("blob", out var blob).ShouldBeTrue();
            blob.ToArray().ShouldBe(new byte[] { 0, 1, 2, 255 });
            headers[1].IsText.ShouldBeFalse();
        }
    }

    [Fact]
    public async Task Headers_larger_than_MaxHeadersSize_are_refused_before_sending()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        var headers = new ZaichikHeaders().Add("big", new string('x', 20_000));

        var error = await Should.ThrowAsync<ArgumentException>(async () => await client.PublishAsync("headed", "body", null, headers));

        error.Message.ShouldContain("MaxHeadersSize");
    }

    [Fact]
    public async Task Typed_publish_and_subscribe_go_through_JSON_by_default_and_a_custom_serializer_when_given()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("orders", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });

        await client.PublishAsync("orders", new OrderPlaced("o-1", 12.5m), key: "o-1");
        await client.PublishAsync("orders", new OrderPlaced("o-2", 3m), serializer: new ZaichikJsonSerializer<OrderPlaced>(TestJson.Default.OrderPlaced));

        await using var orders = await client.SubscribeAsync<OrderPlaced>("orders", new SubscribeOptions { Prefetch = 10 });
        var typed = new List<ZaichikMessage<OrderPlaced>>();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await foreach (var message in orders.WithCancellation(deadline.Token))
        {
            typed.Add(message);
            await client.CommitAsync(message);
            if (typed.Count == 2)
            {
                break;
            }
        }

        typed.Select(m => m.Value).ShouldBe([new OrderPlaced("o-1", 12.5m), new OrderPlaced("o-2", 3m)]);
        typed[0].Message.PayloadText.ShouldBe("""{"id":"o-1","total":12.5}""", "JsonSerializerOptions.Web: camelCase");
        typed[0].Message.KeyText.ShouldBe("o-1");

        await using var shouted = await client.SubscribeAsync("shouted", serializer: new ShoutingSerializer());
        await client.PublishAsync("shouted", "hello", serializer: new ShoutingSerializer());
        await using var enumerator = shouted.GetAsyncEnumerator(deadline.Token);
        (await enumerator.MoveNextAsync()).ShouldBeTrue();
        enumerator.Current.Message.PayloadText.ShouldBe("HELLO");
        enumerator.Current.Value.ShouldBe("hello");
    }

    [Fact]
    public async Task A_payload_the_serializer_cannot_read_ends_the_typed_enumeration_with_its_error()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await using var orders = await client.SubscribeAsync<OrderPlaced>("bad-json");
        await client.PublishAsync("bad-json", "not json");

        await Should.ThrowAsync<JsonException>(async () =>
        {
            await foreach (var message in orders)
            {
                message.ShouldBeNull("nothing readable arrives");
            }
        });
    }

    [Fact]
    public async Task The_receive_span_continues_the_publishers_trace_through_the_headers()
    {
        var stopped = new ConcurrentQueue<Activity>();
        var topic = "traced-" + Guid.NewGuid().ToString("N");
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == ZaichikTelemetry.ActivitySourceName || source.Name == "test-app",
            // Listeners are process-wide: record only this test's spans, so other tests' publishes carry no trace headers.
            Sample = (ref ActivityCreationOptions<ActivityContext> options) =>
                options.Source.Name == "test-app" || options.Name.StartsWith(topic, StringComparison.Ordinal)
                    ? ActivitySamplingResult.AllDataAndRecorded
                    : ActivitySamplingResult.None,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        using var app = new ActivitySource("test-app");
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await using var subscription = await client.SubscribeAsync(topic);

        using (app.StartActivity("place order"))
        {
            await client.PublishAsync(topic, "order");
        }

        var message = (await ReconnectTests.ReadAsync(subscription, 1))[0];
        await TestServer.EventuallyAsync(() => stopped.Any(a => a.OperationName == $"{topic} receive"), "the receive span ends");
        var publish = stopped.Single(a => a.OperationName == $"{topic} publish");
        var receive = stopped.Single(a => a.OperationName == $"{topic} receive");
        publish.Kind.ShouldBe(ActivityKind.Producer);
        publish.Parent!.OperationName.ShouldBe("place order");
        receive.Kind.ShouldBe(ActivityKind.Consumer);
        receive.TraceId.ShouldBe(publish.TraceId);
        receive.ParentSpanId.ShouldBe(publish.SpanId, "the consumer's span is a child of the publisher's");
        message.ParentContext.SpanId.ShouldBe(publish.SpanId);
        message.Headers.GetText(ZaichikTelemetry.TraceParentHeader).ShouldBe(publish.Id);
    }

    [Fact]
    public async Task The_meter_counts_publishes_receipts_commits_and_publish_durations()
    {
        var topic = "metered-" + Guid.NewGuid().ToString("N");
        var counts = new ConcurrentDictionary<string, long>();
        var durations = new ConcurrentQueue<double>();
        using var meters = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == ZaichikTelemetry.MeterName)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        meters.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            // Other tests publish at the same time: count only this test's topic (commits carry no topic).
            foreach (var tag in tags)
            {
                if (tag.Key == "messaging.destination.name" && (string?)tag.Value != topic)
                {
                    return;
                }
            }

            counts.AddOrUpdate(instrument.Name, value, (_, total) => total + value);
        });
        meters.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "messaging.destination.name" && (string?)tag.Value == topic)
                {
                    durations.Enqueue(value);
                }
            }
        });
        meters.Start();
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await using var subscription = await client.SubscribeAsync(topic, new SubscribeOptions { Prefetch = 10 });

        for (var i = 0; i < 5; i++)
        {
            await client.PublishAsync(topic, $"m{i}");
        }

        foreach (var message in await ReconnectTests.ReadAsync(subscription, 5))
        {
            await client.CommitAsync(message);
        }

        counts.GetValueOrDefault("zaichik.client.published").ShouldBe(5);
        counts.GetValueOrDefault("zaichik.client.received").ShouldBe(5);
        counts.GetValueOrDefault("zaichik.client.committed").ShouldBeGreaterThanOrEqualTo(5);
        durations.Count.ShouldBe(5);
        durations.ShouldAllBe(seconds => seconds > 0 && seconds < 20);
    }

    internal sealed record OrderPlaced(string Id, decimal Total);

    private sealed class ShoutingSerializer : IZaichikSerializer<string>
    {
        public void Serialize(string value, IBufferWriter<byte> output) => output.Write(Encoding.UTF8.GetBytes(value.ToUpperInvariant()));

        public string Deserialize(ReadOnlyMemory<byte> payload) => Encoding.UTF8.GetString(payload.Span).ToLowerInvariant();
    }
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web)]
[JsonSerializable(typeof(MessageFeaturesTests.OrderPlaced))]
internal sealed partial class TestJson : JsonSerializerContext;
