using Microsoft.Extensions.Time.Testing;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Tests.EndToEnd;

public sealed class RetentionTests
{
    private static readonly TopicOptions TenSeconds = new() { RetentionTtl = TimeSpan.FromSeconds(10) };

    [Fact]
    public async Task Retained_subscriber_gets_retained_messages_in_order_then_live_ones_with_no_gap_or_duplicate()
    {
        await using var server = await TestServer.StartAsync();
        var publisher = await server.ConnectAsync();
        var consumer = await server.ConnectAsync();
        await publisher.CreateTopicAsync("seam", new TopicOptions { RetentionTtl = TimeSpan.FromMinutes(5) });
        const int total = 2_000;

        // The publisher keeps going while the subscription is being set up, so some messages are retained
        // and some arrive live; the seam between the two falls somewhere in the middle.
        var publishing = Task.Run(async () =>
        {
            for (var i = 0; i < total; i++)
            {
                await publisher.PublishAsync("seam", $"{i}");
            }
        });
        while (!server.Registry.TryGet("seam", out var topic) || topic.Current is not { Log.LastSequence: > 0 })
        {
            await Task.Yield();
        }

        await using var reader = new MessageReader(await consumer.SubscribeAsync("seam", new SubscribeOptions { Prefetch = 100, AutoCommit = true }));
        var received = await reader.NextAsync(total);
        await publishing;

        received.Select(m => int.Parse(m.PayloadText)).ShouldBe(Enumerable.Range(0, total));
        received.Select(m => m.Sequence).ShouldBeInOrder(SortDirection.Ascending);
    }

    [Fact]
    public async Task Expired_messages_are_never_delivered()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(time: time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("expiring", TenSeconds);
        await client.PublishAsync("expiring", "old");
        time.Advance(TimeSpan.FromSeconds(10));
        await client.PublishAsync("expiring", "fresh");

        await using var reader = new MessageReader(await client.SubscribeAsync("expiring"));

        (await reader.NextAsync()).PayloadText.ShouldBe("fresh");
    }

    [Fact]
    public async Task Unexpired_messages_are_replayed_to_a_new_subscriber()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(time: time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("replayed", TenSeconds);
        await client.PublishAsync("replayed", "a");
        time.Advance(TimeSpan.FromSeconds(9.999));

        await using var reader = new MessageReader(await client.SubscribeAsync("replayed"));

        (await reader.NextAsync()).PayloadText.ShouldBe("a");
    }

    [Fact]
    public async Task Message_that_expires_while_a_slow_consumer_holds_its_window_is_never_delivered()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(time: time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("slow", TenSeconds);
        await client.PublishAsync("slow", "first");
        await client.PublishAsync("slow", "expires-while-waiting");
        await using var reader = new MessageReader(await client.SubscribeAsync("slow"));
        var first = await reader.NextAsync();

        time.Advance(TimeSpan.FromSeconds(10));
        await client.PublishAsync("slow", "after");
        await client.CommitAsync(first);

        (await reader.NextAsync()).PayloadText.ShouldBe("after");
    }

    [Fact]
    public async Task Without_retention_a_subscriber_only_gets_messages_published_after_its_subscribe_was_acknowledged()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.PublishAsync("no-retention", "before");

        await using var reader = new MessageReader(await client.SubscribeAsync("no-retention", new SubscribeOptions { From = StartPosition.Retained }));
        await client.PublishAsync("no-retention", "after");

        (await reader.NextAsync()).PayloadText.ShouldBe("after");
    }

    [Fact]
    public async Task Latest_subscriber_skips_retained_messages()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("latest", TenSeconds);
        await client.PublishAsync("latest", "retained");

        await using var reader = new MessageReader(await client.SubscribeAsync("latest", new SubscribeOptions { From = StartPosition.Latest }));
        await client.PublishAsync("latest", "live");

        (await reader.NextAsync()).PayloadText.ShouldBe("live");
    }

    [Fact]
    public async Task Expired_messages_are_removed_from_disk_by_the_sweep()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(
            options => options with
            {
                MaxPayloadSize = 1024,
                MaxKeySize = 64,
                Storage = new() { PageSizeBits = 12, MemorySizeBits = 13, SegmentSizeBits = 12 },
            },
            time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("swept", TenSeconds);
        var payload = new string('x', 1000);
        for (var i = 0; i < 40; i++)
        {
            await client.PublishAsync("swept", payload);
        }

        server.Registry.TryGet("swept", out var topic).ShouldBeTrue();
        await topic.Current!.Log.CommitAsync(CancellationToken.None);
        var segmentsBefore = SegmentFiles(topic.Directory);
        time.Advance(TimeSpan.FromSeconds(10));
        var kept = await client.PublishAsync("swept", "kept");

        await server.Maintenance.SweepAllAsync(CancellationToken.None);
        await topic.Current!.Log.CommitAsync(CancellationToken.None);

        topic.Current.Log.FirstSequence.ShouldBe(kept.Sequence);
        await TestServer.EventuallyAsync(() => SegmentFiles(topic.Directory) < segmentsBefore, $"segment files should be deleted (were {segmentsBefore})");
    }

    private static int SegmentFiles(string directory) =>
        Directory.GetFiles(directory, "log.*").Length;
}
