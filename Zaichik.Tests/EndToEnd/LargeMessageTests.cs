using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Server.Storage;
using Zaichik.Server.Topics;

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
    public async Task A_split_message_whose_tail_was_never_written_is_skipped_and_later_messages_still_arrive()
    {
        // A crash between two fragments of a split message leaves its First entry with no end in the log.
        var dataPath = Path.Combine(Path.GetTempPath(), "zaichik-torn-" + Guid.NewGuid().ToString("N"));
        var directory = Path.Combine(dataPath, "topics", "torn");
        new TopicSettings(RetentionTtlMs: 3_600_000, CompactionWindowMs: 0).Write(directory);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await using (var log = TopicLog.Open(directory, new StorageOptions()))
        {
            var entry = new byte[1024];
            var part = new byte[100];
            log.TryAppend(entry.AsSpan(0, LogRecord.WriteFirst(entry, now, false, default, 100_000, part)), out _).ShouldBeTrue();
            log.TryAppend(entry.AsSpan(0, LogRecord.WriteContinuation(entry, now, part)), out _).ShouldBeTrue();
            log.TryAppend(entry.AsSpan(0, LogRecord.WriteWhole(entry, now, false, default, "intact"u8)), out _).ShouldBeTrue();
        }

        try
        {
            await using var server = await TestServer.StartAsync(dataPath: dataPath);
            var client = await server.ConnectAsync();
            await using var reader = new MessageReader(await client.SubscribeAsync("torn", new SubscribeOptions { From = StartPosition.Retained }));

            (await reader.NextAsync()).PayloadText.ShouldBe("intact");
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
