using Microsoft.Extensions.Time.Testing;
using Zaichik.Client;

namespace Zaichik.Tests.EndToEnd;

public sealed class CompactionTests
{
    [Fact]
    public async Task Keyed_duplicates_inside_the_window_are_acknowledged_as_duplicates_and_never_delivered()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("compacted", new TopicOptions { CompactionWindow = TimeSpan.FromSeconds(10), RetentionTtl = TimeSpan.FromMinutes(1) });

        var results = new List<PublishResult>();
        for (var i = 0; i < 100; i++)
        {
            results.Add(await client.PublishAsync("compacted", $"key1-{i}", key: "key1"));
        }

        results.Add(await client.PublishAsync("compacted", "key2-0", key: "key2"));
        await client.PublishAsync("compacted", "end");
        await using var reader = new MessageReader(await client.SubscribeAsync("compacted", new SubscribeOptions { Prefetch = 100, AutoCommit = true }));

        results.Count(r => r.Duplicate).ShouldBe(99);
        results.Where(r => r.Duplicate).ShouldAllBe(r => r.Sequence == results[0].Sequence);
        (await reader.NextAsync(3)).Select(m => m.PayloadText).ShouldBe(["key1-0", "key2-0", "end"]);
    }

    [Fact]
    public async Task Key_is_accepted_again_once_its_window_has_passed()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(time: time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("window", new TopicOptions { CompactionWindow = TimeSpan.FromSeconds(10) });
        await client.PublishAsync("window", "v1", key: "k");

        time.Advance(TimeSpan.FromSeconds(9));
        var inside = await client.PublishAsync("window", "v2", key: "k");
        time.Advance(TimeSpan.FromSeconds(1));
        var after = await client.PublishAsync("window", "v3", key: "k");

        inside.Duplicate.ShouldBeTrue();
        after.Duplicate.ShouldBeFalse();
    }

    [Fact]
    public async Task Unkeyed_messages_are_never_dropped()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("unkeyed", new TopicOptions { CompactionWindow = TimeSpan.FromSeconds(10) });

        var results = new List<PublishResult>();
        for (var i = 0; i < 20; i++)
        {
            results.Add(await client.PublishAsync("unkeyed", "same"));
        }

        results.ShouldAllBe(r => !r.Duplicate);
        results.Select(r => r.Sequence).Distinct().Count().ShouldBe(20);
    }
}
