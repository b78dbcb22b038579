using System.Net.Http.Json;
using System.Text.Json;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;
using Zaichik.Tests.Client;

namespace Zaichik.Tests.EndToEnd;

/// <summary>MaxMessages and MaxBytes: the oldest messages go first, beside the TTL, and the limits survive a restart.</summary>
public sealed class TopicLimitTests
{
    private static readonly TopicOptions Retained = new() { RetentionTtl = TimeSpan.FromHours(1) };

    [Fact]
    public async Task MaxMessages_keeps_the_newest_ones_and_a_subscriber_from_the_start_sees_only_them()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("recent", Retained with { MaxMessages = 10 });
        for (var i = 1; i <= 100; i++)
        {
            await client.PublishAsync("recent", $"m{i}");
        }

        await server.Maintenance.SweepAllAsync(CancellationToken.None);

        var subscription = await client.SubscribeAsync("recent", new SubscribeOptions { Prefetch = 100 });
        subscription.StartSequence.ShouldBe(91);
        var kept = await ReconnectTests.ReadAsync(subscription, 10);
        kept.Select(message => message.Sequence).ShouldBe(Enumerable.Range(91, 10).Select(sequence => (long)sequence));
        kept[0].PayloadText.ShouldBe("m91");

        // Replay by sequence from before the cut starts at the first message kept, never below it.
        var fromOne = await (await server.ConnectAsync()).SubscribeAsync("recent", new SubscribeOptions { From = StartPosition.Sequence(1), Prefetch = 100 });
        (await ReconnectTests.ReadAsync(fromOne, 1))[0].Sequence.ShouldBe(91);
        server.Registry.TryGet("recent", out var topic).ShouldBeTrue();
        topic.Counters.Trimmed.ShouldBe(90);
        topic.Counters.Expired.ShouldBe(0);
    }

    [Fact]
    public async Task MaxBytes_keeps_at_most_that_much_log_plus_a_page_and_the_newest_message()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        const long maxBytes = 64 * 1024;
        await client.CreateTopicAsync("sized", Retained with { MaxBytes = maxBytes });
        var payload = new string('x', 1_000);
        for (var i = 1; i <= 500; i++)
        {
            await client.PublishAsync("sized", payload);
        }

        await server.Maintenance.SweepAllAsync(CancellationToken.None);

        server.Registry.TryGet("sized", out var topic).ShouldBeTrue();
        var log = topic.Current!.Log;
        (log.TailAddress - log.BeginAddress).ShouldBeLessThanOrEqualTo(maxBytes + (1L << log.PageSizeBits));
        log.FirstSequence.ShouldBeGreaterThan(400, "about 64 of the 500 messages fit");
        var subscription = await client.SubscribeAsync("sized", new SubscribeOptions { Prefetch = 1_000 });
        var kept = await ReconnectTests.ReadAsync(subscription, (int)(501 - log.FirstSequence));
        kept[0].Sequence.ShouldBe(log.FirstSequence);
        kept[^1].Sequence.ShouldBe(500);
        topic.Counters.Trimmed.ShouldBe(log.FirstSequence - 1);
    }

    [Fact]
    public async Task Limits_survive_a_restart_conflict_with_other_settings_and_show_in_the_admin_api()
    {
        await using var server = await TestServer.StartAsync(options => options with { Admin = new AdminOptions { Url = "http://127.0.0.1:0" } });
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("bounded", Retained with { MaxMessages = 5, MaxBytes = 1L << 20 });

        await server.RestartAsync();

        client = await server.ConnectAsync();
        await client.CreateTopicAsync("bounded", Retained with { MaxMessages = 5, MaxBytes = 1L << 20 });
        (await Should.ThrowAsync<ZaichikServerException>(async () => await client.CreateTopicAsync("bounded", Retained with { MaxMessages = 6 })))
            .Code.ShouldBe(ErrorCode.TopicSettingsConflict);
        for (var i = 1; i <= 8; i++)
        {
            await client.PublishAsync("bounded", $"m{i}");
        }

        await server.Maintenance.SweepAllAsync(CancellationToken.None);
        using var http = new HttpClient { BaseAddress = new Uri(server.Server.AdminUrl!) };
        var topic = await http.GetFromJsonAsync<JsonElement>("/api/topics/bounded");
        topic.GetProperty("maxMessages").GetInt64().ShouldBe(5);
        topic.GetProperty("maxBytes").GetInt64().ShouldBe(1L << 20);
        topic.GetProperty("firstSequence").GetInt64().ShouldBe(4);
        topic.GetProperty("trimmed").GetInt64().ShouldBe(3);
        Should.Throw<ArgumentOutOfRangeException>(() => client.CreateTopicAsync("negative", new TopicOptions { MaxMessages = -1 }).AsTask().GetAwaiter().GetResult());
    }

    [Fact]
    public async Task A_durable_consumer_behind_the_cut_resumes_at_the_first_message_kept()
    {
        await using var server = await TestServer.StartAsync();
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync("capped", new TopicOptions { MaxMessages = 20 });
        var options = new SubscribeOptions { DurableName = "slow", Prefetch = 1_000, From = StartPosition.Latest };
        await using (var first = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port))
        {
            await first.SubscribeAsync("capped", options);
        }

        for (var i = 1; i <= 50; i++)
        {
            await publisher.PublishAsync("capped", $"m{i}");
        }

        await server.Maintenance.SweepAllAsync(CancellationToken.None);

        await using var second = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port);
        var resumed = await second.SubscribeAsync("capped", options);
        var messages = await ReconnectTests.ReadAsync(resumed, 20);
        messages[0].Sequence.ShouldBe(31, "a topic without retention keeps messages for durable consumers, but not past its limit");
        messages[^1].Sequence.ShouldBe(50);
    }
}
