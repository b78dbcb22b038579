using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Server.Storage;
using Zaichik.Tests.Storage;

namespace Zaichik.Tests.EndToEnd;

/// <summary>Messages larger than a log page are stored as several log entries and delivered whole.</summary>
public sealed class LargeMessageTests
{
    private static readonly TopicOptions Retained = new() { RetentionTtl = TimeSpan.FromHours(1) };

    [Fact]
    public async Task A_one_MiB_message_is_delivered_whole_between_small_ones()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("large", Retained);
        var large = new byte[1024 * 1024];
        Random.Shared.NextBytes(large);

        var before = await client.PublishAsync("large", "before");
        var big = await client.PublishAsync("large", large, key: new byte[] { 1, 2, 3 });
        var after = await client.PublishAsync("large", "after");
        await using var reader = new MessageReader(await client.SubscribeAsync("large", new SubscribeOptions { Prefetch = 10, AutoCommit = true }));
        var received = await reader.NextAsync(3);

        received.Select(m => m.Sequence).ShouldBe([before.Sequence, big.Sequence, after.Sequence]);
        received[0].PayloadText.ShouldBe("before");
        received[1].Payload.ToArray().ShouldBe(large);
        received[1].Key!.Value.ToArray().ShouldBe(new byte[] { 1, 2, 3 });
        received[2].PayloadText.ShouldBe("after");
    }

    [Fact]
    public async Task Large_messages_survive_a_restart_and_keep_their_compaction_key()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("large-kept", Retained with { CompactionWindow = TimeSpan.FromMinutes(1) });
        var payload = Enumerable.Range(0, 300_000).Select(i => (byte)i).ToArray();
        await client.PublishAsync("large-kept", payload, key: "k"u8.ToArray());

        (await client.PublishAsync("large-kept", payload, key: "k"u8.ToArray())).Duplicate.ShouldBeTrue();
        await server.RestartAsync();
        var consumer = await server.ConnectAsync();
        await using var reader = new MessageReader(await consumer.SubscribeAsync("large-kept"));

        (await reader.NextAsync()).Payload.ToArray().ShouldBe(payload);
    }

    [Fact]
    public async Task A_split_message_missing_a_fragment_is_skipped_reported_and_later_messages_still_arrive()
    {
        var dataPath = Path.Combine(Path.GetTempPath(), "zaichik-torn-" + Guid.NewGuid().ToString("N"));
        var logs = new CapturingLoggerProvider();
        try
        {
            await using (var server = await TestServer.StartAsync(dataPath: dataPath))
            {
                var client = await server.ConnectAsync();
                await client.CreateTopicAsync("torn", Retained);
                await client.PublishAsync("torn", "before");
                await client.PublishAsync("torn", new byte[300_000]);
                await client.PublishAsync("torn", "intact");
            }

            // A fragment in the middle of the split message is lost, as a damaged disk would lose it.
            var directory = Path.Combine(dataPath, "topics", "torn");
            var fragments = LogFiles.Entries(directory, new StorageOptions()).Where(entry => entry.Sequence == 2).ToList();
            fragments.Count.ShouldBeGreaterThan(2);
            LogFiles.Corrupt(directory, new StorageOptions(), 2);
            LogFiles.Write(directory, new StorageOptions(), fragments[2].Address + 4 + 30, [0xEE]);

            await using var restarted = await TestServer.StartAsync(dataPath: dataPath, logs: logs);
            var consumer = await restarted.ConnectAsync();
            await using var reader = new MessageReader(await consumer.SubscribeAsync("torn", new SubscribeOptions { Prefetch = 10 }));

            (await reader.NextAsync()).PayloadText.ShouldBe("before");
            var next = await reader.NextAsync();
            next.PayloadText.ShouldBe("intact");
            next.Sequence.ShouldBe(3);
            logs.Lines.ShouldContain(line => line.Contains("sequences 2..2", StringComparison.Ordinal) && line.Contains("were lost", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(dataPath, recursive: true);
        }
    }

    [Fact]
    public async Task Payload_over_the_default_limit_of_one_MiB_is_refused()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();

        var error = await Should.ThrowAsync<ZaichikServerException>(async () => await client.PublishAsync("too-large", new byte[(1024 * 1024) + 1]));

        error.Code.ShouldBe(ErrorCode.PayloadTooLarge);
    }
}
