using System.Text.Json;
using Zaichik.Server.Hosting;
using Zaichik.Tests.EndToEnd;
using static Zaichik.Tests.Cli.CliRunner;

namespace Zaichik.Tests.Cli;

/// <summary>zaichik topics, topic and consumers against a real broker's admin HTTP API.</summary>
public sealed class AdminCliTests
{
    private static Task<TestServer> StartAsync(Func<ZaichikServerOptions, ZaichikServerOptions>? configure = null) =>
        TestServer.StartAsync(o =>
        {
            var configured = configure?.Invoke(o) ?? o;
            return configured with { Admin = configured.Admin with { Url = "http://127.0.0.1:0" } };
        });

    /// <summary>--server and --admin for a test broker.</summary>
    private static string[] Both(TestServer server) => [.. At(server), "--admin", server.Server.AdminUrl!];

    /// <summary>The table row (a line of the output) that holds <paramref name="first"/>.</summary>
    private static string Row(CliResult result, string first) =>
        result.Lines.FirstOrDefault(line => line.Contains($" {first} ", StringComparison.Ordinal))
        ?? throw new ShouldAssertException($"no row with '{first}' in:\n{result}");

    [Fact]
    public async Task A_created_topic_shows_its_settings_and_sequences()
    {
        await using var server = await StartAsync();
        var topic = Topic("shown");
        (await RunAsync([.. Both(server), "create", topic, "--retention", "1h", "--window", "10s", "--durability", "always"])).ExitCode.ShouldBe(0);
        (await RunAsync([.. Both(server), "pub", topic, "m{n}", "--count", "3"])).ExitCode.ShouldBe(0);

        var shown = await RunAsync([.. Both(server), "topic", topic]);
        var json = await RunAsync([.. Both(server), "topic", topic, "--output", "json"]);

        shown.ExitCode.ShouldBe(0, shown.ToString());
        Row(shown, "name").ShouldContain(topic);
        Row(shown, "retention").ShouldContain(" 1h ");
        Row(shown, "window").ShouldContain(" 10s ");
        Row(shown, "durability").ShouldContain(" Always ");
        Row(shown, "sequences").ShouldContain(" 1-3 ");
        Row(shown, "messages").ShouldContain(" 3 ");
        json.ExitCode.ShouldBe(0, json.ToString());
        using var detail = JsonDocument.Parse(json.Out);
        detail.RootElement.GetProperty("name").GetString().ShouldBe(topic);
        detail.RootElement.GetProperty("retentionTtlMs").GetInt64().ShouldBe(3_600_000);
        detail.RootElement.GetProperty("lastSequence").GetInt64().ShouldBe(3);
    }

    [Fact]
    public async Task Topics_lists_the_topics_with_the_prefix()
    {
        await using var server = await StartAsync();
        var prefix = Topic("list");
        foreach (var name in new[] { $"{prefix}.a", $"{prefix}.b", Topic("other") })
        {
            (await RunAsync([.. Both(server), "create", name, "--retention", "5m"])).ExitCode.ShouldBe(0);
        }

        var listed = await RunAsync([.. Both(server), "topics", "--prefix", prefix]);
        var json = await RunAsync([.. Both(server), "topics", "--prefix", prefix, "--output", "json"]);
        var none = await RunAsync([.. Both(server), "topics", "--prefix", "nothing-has-this-prefix"]);

        listed.ExitCode.ShouldBe(0, listed.ToString());
        Row(listed, $"{prefix}.a").ShouldContain(" 5m ");
        Row(listed, $"{prefix}.b").ShouldContain(" 5m ");
        listed.Out.ShouldNotContain("other-");
        using var topics = JsonDocument.Parse(json.Out);
        topics.RootElement.EnumerateArray().Select(t => t.GetProperty("name").GetString()).ShouldBe([$"{prefix}.a", $"{prefix}.b"]);
        none.ExitCode.ShouldBe(0, none.ToString());
        none.Lines.ShouldBe(["no topics starting with 'nothing-has-this-prefix'"]);
    }

    [Fact]
    public async Task Topics_reads_every_page_the_server_splits_the_list_into()
    {
        await using var server = await StartAsync(o => o with { Admin = o.Admin with { MaxTopicsPerPage = 2 } });
        var prefix = Topic("paged");
        var names = Enumerable.Range(1, 5).Select(i => $"{prefix}.{i}").ToArray();
        foreach (var name in names)
        {
            (await RunAsync([.. Both(server), "create", name])).ExitCode.ShouldBe(0);
        }

        var listed = await RunAsync([.. Both(server), "topics", "--prefix", prefix]);
        var json = await RunAsync([.. Both(server), "topics", "--prefix", prefix, "--output", "json"]);

        listed.ExitCode.ShouldBe(0, listed.ToString());
        foreach (var name in names)
        {
            Row(listed, name).ShouldContain(" 0 ");
        }

        using var topics = JsonDocument.Parse(json.Out);
        topics.RootElement.EnumerateArray().Select(t => t.GetProperty("name").GetString()).ShouldBe(names);
    }

    [Fact]
    public async Task Consumers_shows_a_durable_consumers_position_and_lag()
    {
        await using var server = await StartAsync();
        var topic = Topic("lag");
        (await RunAsync([.. Both(server), "create", topic, "--retention", "1h"])).ExitCode.ShouldBe(0);
        (await RunAsync([.. Both(server), "pub", topic, "m{n}", "--count", "3"])).ExitCode.ShouldBe(0);
        (await RunAsync([.. Both(server), "sub", topic, "--durable", "billing", "--count", "2"])).ExitCode.ShouldBe(0);

        var listed = await RunAsync([.. Both(server), "consumers", topic]);
        var json = await RunAsync([.. Both(server), "consumers", topic, "--output", "json"]);

        listed.ExitCode.ShouldBe(0, listed.ToString());
        Row(listed, "billing").ShouldContain(topic);
        using var consumers = JsonDocument.Parse(json.Out);
        var billing = consumers.RootElement.EnumerateArray().ShouldHaveSingleItem();
        billing.GetProperty("name").GetString().ShouldBe("billing");
        billing.GetProperty("committedSequence").GetInt64().ShouldBe(2);
        billing.GetProperty("lag").GetInt64().ShouldBe(1);
    }

    [Fact]
    public async Task An_unknown_topic_is_one_line_and_exit_code_1()
    {
        await using var server = await StartAsync();

        var topic = await RunAsync([.. Both(server), "topic", "nosuch"]);
        var consumers = await RunAsync([.. Both(server), "consumers", "nosuch"]);

        topic.ExitCode.ShouldBe(1, topic.ToString());
        topic.ErrorLines.ShouldBe(["zaichik: there is no topic 'nosuch'"], topic.ToString());
        topic.Out.ShouldBeEmpty();
        consumers.ExitCode.ShouldBe(1, consumers.ToString());
        consumers.ErrorLines.ShouldBe(["zaichik: there is no topic 'nosuch'"], consumers.ToString());
    }

    [Fact]
    public async Task The_admin_API_needs_a_token_with_the_admin_right()
    {
        ZaichikTokenOptions[] tokens =
        [
            new() { Name = "ops", Token = "ops-secret-0123456789", Admin = true },
            new() { Name = "app", Token = "app-secret-0123456789", Publish = [">"] },
        ];
        await using var server = await StartAsync(o => o with { Tokens = tokens });

        var without = await RunAsync([.. Both(server), "topics"]);
        var notAdmin = await RunAsync([.. Both(server), "--token", "app-secret-0123456789", "topics"]);
        var admin = await RunAsync([.. Both(server), "--token", "ops-secret-0123456789", "topics"]);

        without.ExitCode.ShouldBe(1, without.ToString());
        without.ErrorLines.ShouldBe(["zaichik: this server requires a token: send Authorization: Bearer <token> of a token with the admin right"], without.ToString());
        notAdmin.ExitCode.ShouldBe(1, notAdmin.ToString());
        notAdmin.ErrorLines.Length.ShouldBe(1, notAdmin.ToString());
        notAdmin.ErrorLines[0].ShouldContain("does not have the admin right");
        admin.ExitCode.ShouldBe(0, admin.ToString());
    }
}
