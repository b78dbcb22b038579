using Zaichik.Server.Hosting;
using Zaichik.Tests.EndToEnd;
using static Zaichik.Tests.Cli.CliRunner;

namespace Zaichik.Tests.Cli;

/// <summary>zaichik bench: counts in the output, never timings.</summary>
public sealed class BenchCliTests
{
    [Fact]
    public async Task Bench_pub_publishes_count_messages_and_prints_the_latency_table()
    {
        await using var server = await TestServer.StartAsync();
        var topic = Topic("benchpub");
        (await RunAsync([.. At(server), "create", topic, "--retention", "1h"])).ExitCode.ShouldBe(0);

        var bench = await RunAsync([.. At(server), "bench", "pub", topic, "--count", "200", "--size", "32", "--inflight", "8"]);

        bench.ExitCode.ShouldBe(0, bench.ToString());
        bench.Out.ShouldContain($"bench pub: 200 of 200 messages of 32 bytes acknowledged by {topic} (0 duplicates), 8 in flight");
        foreach (var column in new[] { "msgs/s", "MB/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms" })
        {
            bench.Out.ShouldContain(column);
        }

        var read = await RunAsync([.. At(server), "sub", topic, "--from", "seq:200", "--count", "1", "--output", "json"]);
        read.Out.ShouldContain("\"sequence\":200");
    }

    [Fact]
    public async Task Bench_sub_receives_every_message_it_publishes()
    {
        await using var server = await TestServer.StartAsync();

        var bench = await RunAsync([.. At(server), "bench", "sub", "--count", "200", "--size", "16", "--inflight", "10"]);

        bench.ExitCode.ShouldBe(0, bench.ToString());
        bench.Out.ShouldContain("bench sub: 200 of 200 messages of 16 bytes received from bench-");
        bench.Out.ShouldContain("(200 published, 0 duplicates), prefetch 10");
        bench.Out.ShouldContain("p99.9 ms");
    }

    [Fact]
    public async Task Bench_sub_as_a_group_member_commits_each_message_and_leaves_the_group_done()
    {
        await using var server = await TestServer.StartAsync();
        var topic = Topic("bench-group");

        var bench = await RunAsync([.. At(server), "bench", "sub", topic, "--count", "200", "--size", "16", "--inflight", "10", "--group", "crew"]);

        bench.ExitCode.ShouldBe(0, bench.ToString());
        bench.Out.ShouldContain($"bench sub: 200 of 200 messages of 16 bytes received from {topic} (200 published, 0 duplicates), prefetch 10, as a member of group crew");
        var group = server.State.Groups(topic).Single(view => view.Name == "crew");
        group.DoneSequence.ShouldBe(200, "every message was committed on its own");
        group.Pending.ShouldBe(0);
    }

    [Fact]
    public async Task Bench_sub_reports_a_refused_publish_instead_of_waiting_for_messages()
    {
        ZaichikTokenOptions[] tokens = [new() { Name = "reader", Token = "reader-secret-0123456789", Subscribe = [">"] }];
        await using var server = await TestServer.StartAsync(o => o with { Tokens = tokens });

        var bench = await RunAsync([.. At(server), "--token", "reader-secret-0123456789", "bench", "sub", "readonly", "--count", "10"]);

        bench.ExitCode.ShouldBe(1, bench.ToString());
        bench.ErrorLines.Length.ShouldBe(1, bench.ToString());
        bench.ErrorLines[0].ShouldStartWith("zaichik: NotAuthorized: ");
    }
}
