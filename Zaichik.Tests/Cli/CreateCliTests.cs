using Zaichik.Tests.EndToEnd;
using static Zaichik.Tests.Cli.CliRunner;

namespace Zaichik.Tests.Cli;

/// <summary>zaichik create: CreateTopic through the client protocol.</summary>
public sealed class CreateCliTests
{
    [Fact]
    public async Task Create_prints_the_settings_and_the_topic_keeps_them()
    {
        await using var server = await TestServer.StartAsync();
        var topic = Topic("create");

        var created = await RunAsync([.. At(server), "create", topic, "--retention", "1h", "--window", "10s", "--durability", "always"]);
        var same = await RunAsync([.. At(server), "create", topic, "--retention", "60m", "--window", "10000ms", "--durability", "always"]);
        var other = await RunAsync([.. At(server), "create", topic, "--retention", "2h"]);

        created.ExitCode.ShouldBe(0, created.ToString());
        created.Lines.ShouldBe([$"topic {topic}: retention 1h, window 10s, durability always"], created.ToString());
        same.ExitCode.ShouldBe(0, same.ToString());
        other.ExitCode.ShouldBe(1, other.ToString());
        other.ErrorLines.Length.ShouldBe(1, other.ToString());
        other.ErrorLines[0].ShouldStartWith("zaichik: TopicSettingsConflict: ");
        server.Registry.TryGet(topic, out var stored).ShouldBeTrue();
        stored.Settings.RetentionTtlMs.ShouldBe(3_600_000);
        stored.Settings.CompactionWindowMs.ShouldBe(10_000);
        stored.Settings.Durability.ShouldBe(Zaichik.Protocol.Durability.Always);
    }

    [Fact]
    public async Task Create_with_limits_prints_and_stores_them_and_refuses_a_negative_one()
    {
        await using var server = await TestServer.StartAsync();
        var topic = Topic("limits");

        var created = await RunAsync([.. At(server), "create", topic, "--retention", "1h", "--max-messages", "1000", "--max-bytes", "1048576"]);
        var negative = await RunAsync([.. At(server), "create", topic, "--max-messages", "-1"]);

        created.ExitCode.ShouldBe(0, created.ToString());
        created.Lines.ShouldBe([$"topic {topic}: retention 1h, window 0, durability the server's, at most 1000 messages, at most 1048576 bytes"], created.ToString());
        server.Registry.TryGet(topic, out var stored).ShouldBeTrue();
        stored.Settings.MaxMessages.ShouldBe(1_000);
        stored.Settings.MaxBytes.ShouldBe(1_048_576);
        negative.ExitCode.ShouldBe(2, negative.ToString());
    }

    [Fact]
    public async Task Create_with_keep_latest_prints_and_stores_it_and_refuses_a_tombstone_retention_without_it()
    {
        await using var server = await TestServer.StartAsync();
        var topic = Topic("latest");

        var created = await RunAsync([.. At(server), "create", topic, "--keep-latest", "--tombstone-retention", "1h"]);
        var stray = await RunAsync([.. At(server), "create", Topic("stray"), "--tombstone-retention", "1h"]);

        created.ExitCode.ShouldBe(0, created.ToString());
        created.Lines.ShouldBe([$"topic {topic}: retention 0, window 0, durability the server's, latest per key (tombstones 1h)"], created.ToString());
        server.Registry.TryGet(topic, out var stored).ShouldBeTrue();
        stored.Settings.KeepLatestPerKey.ShouldBeTrue();
        stored.Settings.TombstoneRetentionMs.ShouldBe(3_600_000);
        stray.ExitCode.ShouldBe(2, stray.ToString());
    }
}
