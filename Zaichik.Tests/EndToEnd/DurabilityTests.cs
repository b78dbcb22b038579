using Microsoft.Extensions.Time.Testing;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Tests.EndToEnd;

public sealed class DurabilityTests
{
    [Fact]
    public async Task Always_acknowledges_only_once_the_record_is_committed_to_disk()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("always", new TopicOptions { Durability = Durability.Always });
        server.Registry.TryGet("always", out var topic).ShouldBeTrue();

        var results = new List<PublishResult>();
        for (var i = 0; i < 20; i++)
        {
            var result = await client.PublishAsync("always", $"m{i}");
            topic.Current!.Log.DurableSequence.ShouldBeGreaterThanOrEqualTo(result.Sequence, "the Ack arrived before the record was committed");
            results.Add(result);
        }

        results.ShouldAllBe(r => r.Durable);
    }

    [Fact]
    public async Task Always_shares_commits_between_many_concurrent_publishes_and_acknowledges_each()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("group", new TopicOptions { Durability = Durability.Always });
        server.Registry.TryGet("group", out var topic).ShouldBeTrue();

        var publishes = Enumerable.Range(0, 2_000).Select(i => client.PublishAsync("group", $"m{i}").AsTask()).ToList();
        var results = await Task.WhenAll(publishes).WaitAsync(TimeSpan.FromSeconds(30));

        results.ShouldAllBe(r => r.Durable);
        results.Select(r => r.Sequence).Distinct().Count().ShouldBe(2_000);
        topic.Current!.Log.DurableSequence.ShouldBeGreaterThanOrEqualTo(results.Max(r => r.Sequence));
        results.Select(r => r.Sequence).Order().ShouldBe(Enumerable.Range(1, 2_000).Select(i => (long)i), "sequences are 1, 2, 3... with no gap");
    }

    [Fact]
    public async Task Interval_acknowledges_before_the_commit_and_commits_when_the_interval_has_passed()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(time: time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("interval", new TopicOptions { Durability = Durability.Interval, CommitInterval = TimeSpan.FromSeconds(5) });
        server.Registry.TryGet("interval", out var topic).ShouldBeTrue();

        var result = await client.PublishAsync("interval", "m");
        result.Durable.ShouldBeFalse();
        topic.Current!.Log.DurableSequence.ShouldBeLessThan(result.Sequence);

        time.Advance(TimeSpan.FromSeconds(5));
        await TestServer.EventuallyAsync(() => topic.Current!.Log.DurableSequence >= result.Sequence, "the interval commit should have run");
    }

    [Fact]
    public async Task Memory_topic_writes_no_log_to_disk_and_starts_empty_after_a_restart()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("memory", new TopicOptions { Durability = Durability.Memory, RetentionTtl = TimeSpan.FromHours(1) });
        PublishResult published;
        await using (var reader = new MessageReader(await client.SubscribeAsync("memory", new SubscribeOptions { Prefetch = 10 })))
        {
            published = await client.PublishAsync("memory", "fan-out");
            published.Durable.ShouldBeFalse();
            (await reader.NextAsync()).PayloadText.ShouldBe("fan-out");
        }

        server.Registry.TryGet("memory", out var topic).ShouldBeTrue();
        Directory.GetFiles(topic.Directory, "log*").ShouldBeEmpty();

        await server.RestartAsync();
        server.Registry.TryGet("memory", out var reopened).ShouldBeTrue();
        reopened.Settings.Durability.ShouldBe(Durability.Memory);
        var again = await server.ConnectAsync();
        await using var after = new MessageReader(await again.SubscribeAsync("memory", new SubscribeOptions { Prefetch = 10 }));
        var next = await again.PublishAsync("memory", "after the restart");
        (await after.NextAsync()).PayloadText.ShouldBe("after the restart", "nothing from before the restart is left");
        next.Sequence.ShouldBeGreaterThan(published.Sequence, "a sequence is never given twice, not even on a Memory topic");
    }

    [Fact]
    public async Task Server_default_durability_applies_to_topics_that_do_not_choose()
    {
        await using var server = await TestServer.StartAsync(options => options with { Durability = Durability.Always });
        var client = await server.ConnectAsync();

        var result = await client.PublishAsync("auto-created", "m");

        result.Durable.ShouldBeTrue();
        server.Registry.TryGet("auto-created", out var topic).ShouldBeTrue();
        topic.Settings.Durability.ShouldBe(Durability.Always);
    }

    [Fact]
    public async Task CreateTopic_with_another_durability_conflicts_and_the_server_default_matches_itself()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("durable-settings", new TopicOptions { Durability = Durability.Interval });

        await client.CreateTopicAsync("durable-settings", new TopicOptions { Durability = Durability.ServerDefault });
        var error = await Should.ThrowAsync<ZaichikServerException>(async () =>
            await client.CreateTopicAsync("durable-settings", new TopicOptions { Durability = Durability.Always }));

        error.Code.ShouldBe(ErrorCode.TopicSettingsConflict);
        error.Message.ShouldContain("durability=Interval");
    }

    [Fact]
    public async Task Durability_survives_a_restart()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("kept-always", new TopicOptions { Durability = Durability.Always, RetentionTtl = TimeSpan.FromHours(1) });
        await client.PublishAsync("kept-always", "m");

        await server.RestartAsync();
        var again = await server.ConnectAsync();

        (await again.PublishAsync("kept-always", "n")).Durable.ShouldBeTrue();
    }
}
