using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Tests.EndToEnd;

public sealed class TopicLifecycleTests
{
    [Fact]
    public async Task Publish_to_an_unknown_topic_creates_it_without_retention_or_compaction()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();

        var result = await client.PublishAsync("created-by-publish", "hello");

        result.Duplicate.ShouldBeFalse();
        server.Registry.TryGet("created-by-publish", out var topic).ShouldBeTrue();
        topic.Settings.RetentionTtlMs.ShouldBe(0);
        topic.Settings.CompactionWindowMs.ShouldBe(0);
    }

    [Fact]
    public async Task Subscribe_to_an_unknown_topic_creates_it()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();

        await using var subscription = await client.SubscribeAsync("created-by-subscribe");

        server.Registry.TryGet("created-by-subscribe", out _).ShouldBeTrue();
    }

    [Fact]
    public async Task With_auto_create_off_publish_and_subscribe_to_an_unknown_topic_fail_with_TopicNotFound()
    {
        await using var server = await TestServer.StartAsync(options => options with { AutoCreateTopics = false });
        var client = await server.ConnectAsync();

        var publish = await Should.ThrowAsync<ZaichikServerException>(async () => await client.PublishAsync("missing", "x"));
        var subscribe = await Should.ThrowAsync<ZaichikServerException>(async () => await client.SubscribeAsync("missing"));

        publish.Code.ShouldBe(ErrorCode.TopicNotFound);
        subscribe.Code.ShouldBe(ErrorCode.TopicNotFound);
        server.Registry.Count.ShouldBe(0);
    }

    [Fact]
    public async Task With_auto_create_off_an_explicitly_created_topic_works()
    {
        await using var server = await TestServer.StartAsync(options => options with { AutoCreateTopics = false });
        var client = await server.ConnectAsync();

        await client.CreateTopicAsync("explicit", new TopicOptions { RetentionTtl = TimeSpan.FromMinutes(1) });
        var result = await client.PublishAsync("explicit", "x");

        result.Duplicate.ShouldBeFalse();
    }

    [Fact]
    public async Task CreateTopic_again_with_the_same_settings_is_acknowledged()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        var options = new TopicOptions { RetentionTtl = TimeSpan.FromSeconds(10), CompactionWindow = TimeSpan.FromSeconds(5) };

        await client.CreateTopicAsync("same", options);
        await client.CreateTopicAsync("same", options);

        server.Registry.Count.ShouldBe(1);
    }

    [Fact]
    public async Task CreateTopic_with_different_settings_fails_and_names_the_existing_settings()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("conflict", new TopicOptions { RetentionTtl = TimeSpan.FromSeconds(10) });

        var error = await Should.ThrowAsync<ZaichikServerException>(async () =>
            await client.CreateTopicAsync("conflict", new TopicOptions { RetentionTtl = TimeSpan.FromSeconds(20) }));

        error.Code.ShouldBe(ErrorCode.TopicSettingsConflict);
        error.Message.ShouldContain("retentionTtlMs=10000");
        error.Message.ShouldContain("compactionWindowMs=0");
    }

    [Fact]
    public async Task CreateTopic_on_a_topic_auto_created_without_settings_conflicts_when_settings_differ()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.PublishAsync("auto", "x");

        var error = await Should.ThrowAsync<ZaichikServerException>(async () =>
            await client.CreateTopicAsync("auto", new TopicOptions { CompactionWindow = TimeSpan.FromSeconds(1) }));

        error.Code.ShouldBe(ErrorCode.TopicSettingsConflict);
    }

    [Fact]
    public async Task Topic_settings_survive_a_restart()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("kept", new TopicOptions { RetentionTtl = TimeSpan.FromSeconds(30), CompactionWindow = TimeSpan.FromSeconds(3) });

        await server.RestartAsync();

        server.Registry.TryGet("kept", out var topic).ShouldBeTrue();
        topic.Settings.RetentionTtlMs.ShouldBe(30_000);
        topic.Settings.CompactionWindowMs.ShouldBe(3_000);
    }
}
