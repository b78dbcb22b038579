using Zaichik.Server.Hosting;
using Zaichik.Tests.EndToEnd;
using static Zaichik.Tests.Cli.CliRunner;

namespace Zaichik.Tests.Cli;

/// <summary>How zaichik fails: one stderr line, never a stack trace, and an exit code that says which kind.</summary>
public sealed class ErrorCliTests
{
    [Theory]
    [InlineData("pub", "t", "hello", "--bogus")]
    [InlineData("pub", "--bogus")]
    [InlineData("frobnicate")]
    [InlineData("sub", "t", "--from", "seq:0")]
    [InlineData("sub", "t", "--from", "time:yesterday")]
    [InlineData("sub", "t", "--count", "0")]
    [InlineData("create", "t", "--retention", "5q")]
    [InlineData("create", "t", "--durability", "sometimes")]
    [InlineData("pub", "t", "text", "--file", "/nonexistent/zaichik-cli-file")]
    [InlineData("pub", "t", "x", "--header", "no-equals-sign")]
    [InlineData("bench", "sub", "--size", "4")]
    [InlineData("pub", "t", "x", "--server", "no-port")]
    public async Task A_usage_error_is_one_line_and_exit_code_2(params string[] args)
    {
        var result = await RunAsync(args);

        result.ExitCode.ShouldBe(2, result.ToString());
        result.ErrorLines.Length.ShouldBe(1, result.ToString());
        result.ErrorLines[0].ShouldStartWith("zaichik: ");
        result.Out.ShouldBeEmpty();
    }

    [Fact]
    public async Task A_usage_error_names_the_verb_whose_help_to_read()
    {
        var bench = await RunAsync("bench", "sub", "--size", "4");
        var pub = await RunAsync("pub");

        bench.ErrorLines.ShouldBe(["zaichik: --size must be at least 8 (see 'zaichik bench sub --help')"], bench.ToString());
        pub.ExitCode.ShouldBe(2, pub.ToString());
        pub.ErrorLines.Length.ShouldBe(1, pub.ToString());
        pub.ErrorLines[0].ShouldEndWith("(see 'zaichik pub --help')");
    }

    [Fact]
    public async Task Nothing_listening_is_exit_code_3_naming_host_and_port()
    {
        var port = UnusedPort();

        var pub = await RunAsync("pub", "t", "hello", "--server", $"127.0.0.1:{port}");
        var topics = await RunAsync("topics", "--admin", $"http://127.0.0.1:{port}");

        pub.ExitCode.ShouldBe(3, pub.ToString());
        pub.ErrorLines.ShouldBe([$"zaichik: cannot reach the server at 127.0.0.1:{port}: Connection refused"], pub.ToString());
        topics.ExitCode.ShouldBe(3, topics.ToString());
        topics.ErrorLines.Length.ShouldBe(1, topics.ToString());
        topics.ErrorLines[0].ShouldStartWith($"zaichik: cannot reach the admin API at 127.0.0.1:{port}");
    }

    [Fact]
    public async Task A_refused_token_is_exit_code_1_with_the_servers_error()
    {
        ZaichikTokenOptions[] tokens = [new() { Name = "ops", Token = "ops-secret-0123456789", Publish = [">"], Subscribe = [">"] }];
        await using var server = await TestServer.StartAsync(o => o with { Tokens = tokens });

        var refused = await RunAsync([.. At(server), "--token", "wrong-secret", "pub", "t", "hello"]);
        var accepted = await RunAsync([.. At(server), "--token", "ops-secret-0123456789", "pub", "t", "hello"]);

        refused.ExitCode.ShouldBe(1, refused.ToString());
        refused.ErrorLines.Length.ShouldBe(1, refused.ToString());
        refused.ErrorLines[0].ShouldStartWith("zaichik: AuthenticationFailed: ");
        accepted.ExitCode.ShouldBe(0, accepted.ToString());
    }

    [Fact]
    public async Task An_unknown_topic_is_one_line_and_exit_code_1()
    {
        await using var server = await TestServer.StartAsync(o => o with { AutoCreateTopics = false });

        var sub = await RunAsync([.. At(server), "sub", "nosuch", "--count", "1"]);
        var pub = await RunAsync([.. At(server), "pub", "nosuch", "hello"]);

        sub.ExitCode.ShouldBe(1, sub.ToString());
        sub.ErrorLines.Length.ShouldBe(1, sub.ToString());
        sub.ErrorLines[0].ShouldStartWith("zaichik: TopicNotFound: ");
        pub.ExitCode.ShouldBe(1, pub.ToString());
        pub.ErrorLines[0].ShouldStartWith("zaichik: TopicNotFound: ");
    }

    [Fact]
    public async Task A_message_too_large_for_a_frame_is_one_line_and_exit_code_1()
    {
        await using var server = await TestServer.StartAsync();
        var file = Path.Combine(Path.GetTempPath(), "zaichik-cli-large-" + Guid.NewGuid().ToString("N"));
        await File.WriteAllBytesAsync(file, new byte[3_000_000]);
        try
        {
            var pub = await RunAsync([.. At(server), "pub", "t", "--file", file]);

            pub.ExitCode.ShouldBe(1, pub.ToString());
            pub.ErrorLines.Length.ShouldBe(1, pub.ToString());
            pub.ErrorLines[0].ShouldStartWith("zaichik: message of 3000000 payload bytes makes a frame of ", Case.Sensitive, pub.ToString());
            pub.ErrorLines[0].ShouldEndWith("; MaxFrameSize is 1081344", Case.Sensitive, pub.ToString());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Help_and_version_print_and_exit_0()
    {
        var help = await RunAsync("pub", "--help");
        var version = await RunAsync("--version");

        help.ExitCode.ShouldBe(0, help.ToString());
        help.Out.ShouldContain("--key");
        help.Out.ShouldContain("--server");
        version.ExitCode.ShouldBe(0, version.ToString());
        version.Out.ShouldStartWith("0.1.0");
    }
}
