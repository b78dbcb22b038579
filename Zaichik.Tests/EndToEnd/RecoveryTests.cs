using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Tests.EndToEnd;

/// <summary>A damaged data folder: the broker starts anyway, serves what is valid and says what it dropped.</summary>
public sealed class RecoveryTests : IDisposable
{
    /// <summary>Makes each record about 240 bytes, so cutting 3,000 bytes from the end damages about a dozen.</summary>
    private static readonly string Padding = new('x', 220);

    private readonly string _dataPath = Path.Combine(Path.GetTempPath(), "zaichik-recovery-" + Guid.NewGuid().ToString("N"));

    [Theory]
    [InlineData("truncate")]
    [InlineData("flip")]
    public async Task A_damaged_tail_is_cut_back_to_the_last_valid_record_and_reported(string damage)
    {
        await PublishAndStopAsync("damaged", 200);
        var segment = Directory.GetFiles(Path.Combine(_dataPath, "topics", "damaged"), "log.*").Single();
        var bytes = await File.ReadAllBytesAsync(segment);
        var end = LastNonZero(bytes) + 1;
        if (damage == "truncate")
        {
            await File.WriteAllBytesAsync(segment, bytes[..(end - 3_000)]);
        }
        else
        {
            bytes[end - 3_000] ^= 0xFF;
            await File.WriteAllBytesAsync(segment, bytes);
        }

        var logs = new CapturingLoggerProvider();
        await using var server = await TestServer.StartAsync(options => options with { DataPath = _dataPath }, logs: logs, dataPath: _dataPath);
        var client = await server.ConnectAsync();
        var after = await client.PublishAsync("damaged", "after-recovery");
        await using var reader = new MessageReader(await client.SubscribeAsync("damaged", new SubscribeOptions { Prefetch = 500, AutoCommit = true }));

        var received = new List<string>();
        while (received.LastOrDefault() != "after")
        {
            received.Add((await reader.NextAsync()).PayloadText.Split('-')[0]);
        }

        var kept = received.Count - 1;
        kept.ShouldBeInRange(150, 199, "the records before the damage are served, the damaged ones are not");
        received.Take(kept).ShouldBe(Enumerable.Range(0, kept).Select(i => $"m{i:D4}"));
        after.Sequence.ShouldBeGreaterThan(0);
        logs.Lines.ShouldContain(line => line.Contains("Topic damaged: cut a corrupt tail") && line.Contains("offsets"));
    }

    [Fact]
    public async Task A_topic_whose_files_cannot_be_read_is_quarantined_and_every_other_topic_is_served()
    {
        await PublishAndStopAsync("healthy", 5);
        var broken = Path.Combine(_dataPath, "topics", "broken");
        Directory.CreateDirectory(broken);
        await File.WriteAllTextAsync(Path.Combine(broken, "topic.json"), "{ this is not json");

        var logs = new CapturingLoggerProvider();
        await using var server = await TestServer.StartAsync(options => options with { DataPath = _dataPath }, logs: logs, dataPath: _dataPath);
        var client = await server.ConnectAsync();
        await using var reader = new MessageReader(await client.SubscribeAsync("healthy", new SubscribeOptions { Prefetch = 5 }));

        (await reader.NextAsync(5)).Count.ShouldBe(5);
        var error = await Should.ThrowAsync<ZaichikServerException>(async () => await client.PublishAsync("broken", "x"));
        error.Code.ShouldBe(ErrorCode.StorageFailure);
        error.Message.ShouldContain("quarantined");
        logs.Lines.ShouldContain(line => line.Contains("Topic broken is quarantined"));
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

    private async Task PublishAndStopAsync(string topic, int count)
    {
        await using var server = await TestServer.StartAsync(options => options with { DataPath = _dataPath }, dataPath: _dataPath);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync(topic, new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        for (var i = 0; i < count; i++)
        {
            await client.PublishAsync(topic, $"m{i:D4}-{Padding}");
        }
    }

    private static int LastNonZero(byte[] bytes)
    {
        var last = bytes.Length - 1;
        while (last > 0 && bytes[last] == 0)
        {
            last--;
        }

        return last;
    }
}
