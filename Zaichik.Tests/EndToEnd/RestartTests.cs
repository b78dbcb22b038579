using Microsoft.Extensions.Time.Testing;
using Zaichik.Client;

namespace Zaichik.Tests.EndToEnd;

/// <summary>What must survive a clean stop and start besides the messages themselves.</summary>
public sealed class RestartTests
{
    [Fact]
    public async Task A_duplicate_published_just_after_a_restart_is_still_dropped()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(time: time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("dedup", new TopicOptions { CompactionWindow = TimeSpan.FromSeconds(10) });
        var original = await client.PublishAsync("dedup", "v1", key: "k");

        await server.RestartAsync();
        time.Advance(TimeSpan.FromSeconds(5));
        var again = await server.ConnectAsync();
        var duplicate = await again.PublishAsync("dedup", "v2", key: "k");

        duplicate.Duplicate.ShouldBeTrue();
        duplicate.Sequence.ShouldBe(original.Sequence);
    }

    [Fact]
    public async Task Only_keys_accepted_within_the_last_window_are_restored()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(time: time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("window-restored", new TopicOptions { CompactionWindow = TimeSpan.FromSeconds(10), RetentionTtl = TimeSpan.FromHours(1) });
        await client.PublishAsync("window-restored", "old", key: "old-key");
        time.Advance(TimeSpan.FromSeconds(20));
        await client.PublishAsync("window-restored", "new", key: "new-key");

        await server.RestartAsync();
        server.Registry.TryGet("window-restored", out var topic).ShouldBeTrue();
        var again = await server.ConnectAsync();

        (await again.PublishAsync("window-restored", "old again", key: "old-key")).Duplicate.ShouldBeFalse();
        (await again.PublishAsync("window-restored", "new again", key: "new-key")).Duplicate.ShouldBeTrue();
        topic.Current!.Keys!.Count.ShouldBe(2, "the window held only new-key after the restart, then old-key again");
    }

    [Fact]
    public async Task Expired_messages_are_not_replayed_after_a_restart_and_the_sweep_resumes()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(time: time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("expiry-restart", new TopicOptions { RetentionTtl = TimeSpan.FromSeconds(10) });
        await client.PublishAsync("expiry-restart", "expires");
        time.Advance(TimeSpan.FromSeconds(6));
        var kept = await client.PublishAsync("expiry-restart", "kept");

        await server.RestartAsync();
        time.Advance(TimeSpan.FromSeconds(5));
        var consumer = await server.ConnectAsync();
        await using var reader = new MessageReader(await consumer.SubscribeAsync("expiry-restart"));
        server.Registry.TryGet("expiry-restart", out var topic).ShouldBeTrue();

        var first = await reader.NextAsync();
        await server.Maintenance.SweepAllAsync(CancellationToken.None);
        first.PayloadText.ShouldBe("kept");
        first.Sequence.ShouldBe(kept.Sequence);
        topic.Current!.Log.FirstSequence.ShouldBe(kept.Sequence, "the sweep removed the expired message after the restart");
    }

    [Fact]
    public async Task Timestamps_keep_increasing_across_a_restart()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(time: time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("clock", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        await client.PublishAsync("clock", "a");

        await server.RestartAsync();
        server.Registry.TryGet("clock", out var topic).ShouldBeTrue();
        var consumer = await server.ConnectAsync();
        await consumer.PublishAsync("clock", "b");
        await using var reader = new MessageReader(await consumer.SubscribeAsync("clock", new SubscribeOptions { Prefetch = 2 }));
        var messages = await reader.NextAsync(2);

        messages[1].Timestamp.ShouldBeGreaterThanOrEqualTo(messages[0].Timestamp);
    }
}
