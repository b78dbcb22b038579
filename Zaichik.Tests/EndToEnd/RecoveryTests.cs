using System.Diagnostics;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Server.Storage;
using Zaichik.Server.Storage.Internal;
using Zaichik.Tests.Storage;

namespace Zaichik.Tests.EndToEnd;

/// <summary>
/// A damaged data folder, end to end: a real broker publishes, stops, has its files damaged the way a bad disk, a crash
/// or an operator damages them, and starts again. Each case checks that the broker starts, other topics serve normally,
/// every message outside the damage is delivered exactly once and in order, the loss is reported with its sequence
/// range, and new publishes continue with fresh sequences.
/// </summary>
public sealed class RecoveryTests : IDisposable
{
    private const int Published = 900;

    /// <summary>Small pages and segments, so 900 messages span many of each: 8 KiB pages, 64 KiB segments.</summary>
    private static readonly StorageOptions Storage = new() { PageSizeBits = 13, MemorySizeBits = 14, SegmentSizeBits = 16 };

    private static readonly string Padding = new('x', 200);

    private readonly string _dataPath = Path.Combine(Path.GetTempPath(), "zaichik-recovery-" + Guid.NewGuid().ToString("N"));

    private string TopicFolder => Path.Combine(_dataPath, "topics", "damaged");

    [Theory]
    [InlineData("checksum")]
    [InlineData("zero length")]
    [InlineData("negative length")]
    [InlineData("zeroed range")]
    [InlineData("first segment truncated")]
    [InlineData("middle segment truncated")]
    [InlineData("last segment truncated")]
    [InlineData("middle segment deleted")]
    public async Task Damage_costs_only_the_damaged_messages_and_is_reported_with_their_sequences(string damage)
    {
        await PublishAndStopAsync();
        var segments = SegmentFiles.List(TopicFolder);
        segments.Count.ShouldBeGreaterThanOrEqualTo(4, "the topic spans several segments");
        var middle = segments[segments.Count / 2];
        switch (damage)
        {
            case "checksum":
                LogFiles.Corrupt(TopicFolder, Storage, 400);
                break;
            case "zero length":
                LogFiles.SetLength(TopicFolder, Storage, 400, 0);
                break;
            case "negative length":
                LogFiles.SetLength(TopicFolder, Storage, 400, -123);
                break;
            case "zeroed range":
                LogFiles.Write(TopicFolder, Storage, LogFiles.AddressOf(TopicFolder, Storage, 400), new byte[12 * 1024]);
                break;
            case "first segment truncated":
                TruncateToHalf(segments[0]);
                break;
            case "middle segment truncated":
                TruncateToHalf(middle);
                break;
            case "last segment truncated":
                TruncateToHalf(segments[^1]);
                break;
            default:
                File.Delete(Path.Combine(TopicFolder, SegmentFiles.Prefix + middle));
                break;
        }

        var logs = new CapturingLoggerProvider();
        await using var server = await StartAsync(logs);
        var client = await server.ConnectAsync();
        var after = await client.PublishAsync("damaged", "after");
        var received = await ReadUntilAsync(client, "damaged", "after");

        after.Sequence.ShouldBe(Published + 1, "new publishes continue after the last sequence, none given twice");
        var sequences = received.Select(m => m.Sequence).ToList();
        sequences.ShouldBe(sequences.Order().Distinct().ToList(), "in order, each once");
        received.ShouldAllBe(m => m.Sequence == after.Sequence || m.PayloadText == $"m{m.Sequence:D4}-{Padding}");
        var missing = Enumerable.Range(1, Published).Select(i => (long)i).Except(sequences).ToList();
        missing.ShouldNotBeEmpty();
        var (first, last) = (missing[0], missing[^1]);
        (last - first + 1).ShouldBe(missing.Count, "one contiguous range is lost");
        logs.Lines.ShouldContain(line => line.Contains("Topic damaged", StringComparison.Ordinal) && line.Contains($"sequences {first}..{last}", StringComparison.Ordinal),
            $"the loss of {first}..{last} is reported; the log said:\n{string.Join("\n", logs.Lines)}");
        await AssertHealthyTopicIsServedAsync(client);
    }

    [Theory]
    [InlineData("deleted")]
    [InlineData("zeroed")]
    [InlineData("random")]
    public async Task A_lost_commit_record_is_recovered_by_scanning_the_segments_never_by_starting_empty(string damage)
    {
        await PublishAndStopAsync();
        LogFiles.DamageCommitRecord(TopicFolder, damage);

        var logs = new CapturingLoggerProvider();
        await using var server = await StartAsync(logs);
        var client = await server.ConnectAsync();
        var after = await client.PublishAsync("damaged", "after");
        var received = await ReadUntilAsync(client, "damaged", "after");

        received.Take(Published).Select(m => m.Sequence).ShouldBe(Enumerable.Range(1, Published).Select(i => (long)i), "every acknowledged message is there");
        after.Sequence.ShouldBeGreaterThan(Published, "old sequences are never given to new messages");
        logs.Lines.ShouldContain(line => line.Contains("Topic damaged: its commit record is", StringComparison.Ordinal));
        await AssertHealthyTopicIsServedAsync(client);
    }

    [Theory]
    [InlineData("fifo")]
    [InlineData("directory")]
    public async Task A_file_of_the_wrong_kind_quarantines_its_topic_at_once_and_every_other_topic_is_served(string kind)
    {
        await PublishAndStopAsync();
        var segment = Path.Combine(TopicFolder, SegmentFiles.Prefix + SegmentFiles.List(TopicFolder)[1]);
        await LogFiles.ReplaceWithWrongKindAsync(segment, kind);

        var logs = new CapturingLoggerProvider();
        await using var server = await StartAsync(logs);
        var client = await server.ConnectAsync();
        var started = Stopwatch.StartNew();
        var error = await Should.ThrowAsync<ZaichikServerException>(async () => await client.PublishAsync("damaged", "x"));

        started.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(10), "nothing blocks on the fifo");
        error.Code.ShouldBe(ErrorCode.StorageFailure);
        error.Message.ShouldContain("quarantined");
        error.Message.ShouldContain(kind == "fifo" ? "a fifo" : "a directory");
        logs.Lines.ShouldContain(line => line.Contains("Topic damaged is quarantined", StringComparison.Ordinal));
        (await Should.ThrowAsync<ZaichikServerException>(async () => await client.SubscribeAsync("damaged"))).Code.ShouldBe(ErrorCode.StorageFailure);
        await AssertHealthyTopicIsServedAsync(client);
    }

    [Fact]
    public async Task A_topic_whose_settings_cannot_be_read_is_quarantined_and_every_other_topic_is_served()
    {
        await PublishAndStopAsync();
        var broken = Path.Combine(_dataPath, "topics", "broken");
        Directory.CreateDirectory(broken);
        await File.WriteAllTextAsync(Path.Combine(broken, "topic.json"), "{ this is not json");

        var logs = new CapturingLoggerProvider();
        await using var server = await StartAsync(logs);
        var client = await server.ConnectAsync();

        var error = await Should.ThrowAsync<ZaichikServerException>(async () => await client.PublishAsync("broken", "x"));
        error.Code.ShouldBe(ErrorCode.StorageFailure);
        error.Message.ShouldContain("quarantined");
        logs.Lines.ShouldContain(line => line.Contains("Topic broken is quarantined", StringComparison.Ordinal));
        await AssertHealthyTopicIsServedAsync(client);
    }

    [Fact]
    public async Task A_log_written_before_sequence_numbers_is_refused_with_its_format_named_not_read_as_garbage()
    {
        Directory.CreateDirectory(Path.Combine(_dataPath, "topics", "old"));
        await File.WriteAllTextAsync(Path.Combine(_dataPath, "topics", "old", "topic.json"), """{ "retentionTtlMs": 0, "compactionWindowMs": 0, "durability": "Interval", "commitIntervalMs": 100 }""");
        await File.WriteAllBytesAsync(Path.Combine(_dataPath, "topics", "old", "log.0"), new byte[4096]);

        await using var server = await StartAsync(new CapturingLoggerProvider());
        var client = await server.ConnectAsync();
        var error = await Should.ThrowAsync<ZaichikServerException>(async () => await client.PublishAsync("old", "x"));

        error.Code.ShouldBe(ErrorCode.StorageFailure);
        error.Message.ShouldContain("storage format 1");
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dataPath, recursive: true);
        }
        catch (IOException)
        {
            // Nothing to clean.
        }
    }

    private Task<TestServer> StartAsync(CapturingLoggerProvider logs) =>
        TestServer.StartAsync(options => options with { DataPath = _dataPath, Storage = Storage }, logs: logs, dataPath: _dataPath);

    private async Task PublishAndStopAsync()
    {
        await using var server = await StartAsync(new CapturingLoggerProvider());
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("damaged", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        await client.CreateTopicAsync("healthy", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        var publishes = new List<Task<PublishResult>>();
        for (var i = 1; i <= Published; i++)
        {
            publishes.Add(client.PublishAsync("damaged", $"m{i:D4}-{Padding}").AsTask());
            publishes.Add(client.PublishAsync("healthy", $"h{i:D4}").AsTask());
        }

        await Task.WhenAll(publishes);
    }

    private static async Task<List<ZaichikMessage>> ReadUntilAsync(ZaichikClient client, string topic, string last)
    {
        await using var reader = new MessageReader(await client.SubscribeAsync(topic, new SubscribeOptions { Prefetch = 1_000, AutoCommit = true }));
        var received = new List<ZaichikMessage>();
        while (received.LastOrDefault()?.PayloadText != last)
        {
            received.Add(await reader.NextAsync());
        }

        return received;
    }

    private static async Task AssertHealthyTopicIsServedAsync(ZaichikClient client)
    {
        (await client.PublishAsync("healthy", "after")).Sequence.ShouldBe(Published + 1);
        var healthy = await ReadUntilAsync(client, "healthy", "after");
        healthy.Select(m => m.Sequence).ShouldBe(Enumerable.Range(1, Published + 1).Select(i => (long)i));
    }

    private void TruncateToHalf(int segment)
    {
        using var file = new FileStream(Path.Combine(TopicFolder, SegmentFiles.Prefix + segment), FileMode.Open, FileAccess.Write);
        file.SetLength(file.Length / 2);
    }
}
