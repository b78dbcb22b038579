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
}
