using System.Text.Json;
using Zaichik.Tests.EndToEnd;
using static Zaichik.Tests.Cli.CliRunner;

namespace Zaichik.Tests.Cli;

/// <summary>zaichik pub and sub against a real broker, through the real client.</summary>
public sealed class PubSubCliTests
{
    private static async Task<string> RetainedTopicAsync(TestServer server, string prefix, params string[] settings)
    {
        var topic = Topic(prefix);
        var created = await RunAsync([.. At(server), "create", topic, "--retention", "1h", .. settings]);
        created.ExitCode.ShouldBe(0, created.ToString());
        return topic;
    }

    [Fact]
    public async Task Pub_prints_the_sequence_and_sub_prints_the_message_with_key_and_headers()
    {
        await using var server = await TestServer.StartAsync();
        var topic = await RetainedTopicAsync(server, "pubsub");

        var pub = await RunAsync([.. At(server), "pub", topic, "hello world", "--key", "order-1", "--header", "tenant=eu", "-H", "kind=test"]);
        var sub = await RunAsync([.. At(server), "sub", topic, "--count", "1"]);

        pub.ExitCode.ShouldBe(0, pub.ToString());
        pub.Lines.ShouldBe([$"published to {topic} at sequence 1"], pub.ToString());
        sub.ExitCode.ShouldBe(0, sub.ToString());
        sub.Lines.ShouldBe(["1\tkey=order-1\ttenant=eu\tkind=test\thello world"], sub.ToString());
        sub.Error.ShouldBeEmpty();
    }

    [Fact]
    public async Task Pub_count_replaces_n_in_text_key_and_headers_and_prints_one_summary()
    {
        await using var server = await TestServer.StartAsync();
        var topic = await RetainedTopicAsync(server, "count");

        var pub = await RunAsync([.. At(server), "pub", topic, "message {n}", "--count", "3", "--key", "k{n}", "-H", "n={n}", "--rate", "1000"]);
        var sub = await RunAsync([.. At(server), "sub", topic, "--count", "3", "--prefetch", "10"]);

        pub.ExitCode.ShouldBe(0, pub.ToString());
        pub.Lines.ShouldBe([$"published 3 messages to {topic}: 3 stored (sequences 1-3), 0 duplicates dropped"], pub.ToString());
        sub.Lines.ShouldBe(["1\tkey=k1\tn=1\tmessage 1", "2\tkey=k2\tn=2\tmessage 2", "3\tkey=k3\tn=3\tmessage 3"], sub.ToString());
    }

    [Fact]
    public async Task Sub_in_a_group_takes_what_the_group_has_not_done_and_redelivery_with_durable_needs_a_group()
    {
        await using var server = await TestServer.StartAsync();
        var topic = await RetainedTopicAsync(server, "group");
        (await RunAsync([.. At(server), "pub", topic, "m{n}", "--count", "5"])).ExitCode.ShouldBe(0);

        var first = await RunAsync([.. At(server), "sub", topic, "--group", "workers", "--count", "3", "--ack-wait", "10s", "--max-deliver", "5"]);
        var second = await RunAsync([.. At(server), "sub", topic, "-g", "workers", "--count", "2", "--output", "json"]);

        first.ExitCode.ShouldBe(0, first.ToString());
        first.Lines.ShouldBe(["1\tm1", "2\tm2", "3\tm3"], first.ToString());
        second.ExitCode.ShouldBe(0, second.ToString());
        var rest = second.Lines.Select(line => JsonDocument.Parse(line).RootElement).ToArray();
        rest.Select(message => message.GetProperty("sequence").GetInt64()).ShouldBe([4L, 5L], second.ToString());
        // The first run may have been sent message 4 before it closed (prefetch 1): then this is its second delivery.
        rest[0].GetProperty("deliveryCount").GetInt32().ShouldBeInRange(1, 2);
        rest[1].GetProperty("deliveryCount").GetInt32().ShouldBe(1);

        var durable = await RunAsync([.. At(server), "sub", topic, "--max-deliver", "3", "--durable", "d"]);
        durable.ExitCode.ShouldBe(2, durable.ToString());
        durable.Error.ShouldContain("--group");
        (await RunAsync([.. At(server), "sub", topic, "--group", "g", "--durable", "d"])).ExitCode.ShouldBe(2);
    }

    [Fact]
    public async Task Sub_with_ack_none_reads_without_commits_and_an_unknown_policy_is_a_usage_error()
    {
        await using var server = await TestServer.StartAsync();
        var topic = await RetainedTopicAsync(server, "noack");
        (await RunAsync([.. At(server), "pub", topic, "m{n}", "--count", "5"])).ExitCode.ShouldBe(0);

        var sub = await RunAsync([.. At(server), "sub", topic, "--ack", "none", "--from", "seq:1", "--count", "3", "--durable", "tail"]);
        sub.ExitCode.ShouldBe(0, sub.ToString());
        sub.Lines.ShouldBe(["1	m1", "2	m2", "3	m3"], sub.ToString());

        (await RunAsync([.. At(server), "sub", topic, "--ack", "sometimes"])).ExitCode.ShouldBe(2);
    }

    [Fact]
    public async Task Pub_reports_duplicates_the_compaction_window_dropped()
    {
        await using var server = await TestServer.StartAsync();
        var topic = await RetainedTopicAsync(server, "dups", "--window", "1h");

        var first = await RunAsync([.. At(server), "pub", topic, "same", "--key", "k", "--count", "3"]);
        var again = await RunAsync([.. At(server), "pub", topic, "same", "--key", "k"]);

        first.Lines.ShouldBe([$"published 3 messages to {topic}: 1 stored (sequences 1-1), 2 duplicates dropped"], first.ToString());
        again.ExitCode.ShouldBe(0, again.ToString());
        again.Lines.ShouldBe([$"duplicate of sequence 1 in {topic}: dropped"], again.ToString());
    }

    [Fact]
    public async Task Pub_sends_a_file_or_stdin_as_it_is()
    {
        await using var server = await TestServer.StartAsync();
        var topic = await RetainedTopicAsync(server, "file");
        var file = Path.Combine(Path.GetTempPath(), $"zaichik-cli-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(file, "from a file {n}");
        try
        {
            var fromFile = await RunAsync([.. At(server), "pub", topic, "--file", file]);
            var fromStdin = await RunAsync([.. At(server), "pub", topic], Utf8("from stdin"));
            var sub = await RunAsync([.. At(server), "sub", topic, "--count", "2"]);

            fromFile.ExitCode.ShouldBe(0, fromFile.ToString());
            fromStdin.ExitCode.ShouldBe(0, fromStdin.ToString());
            sub.Lines.ShouldBe(["1\tfrom a file {n}", "2\tfrom stdin"], sub.ToString());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Sub_from_a_sequence_starts_there()
    {
        await using var server = await TestServer.StartAsync();
        var topic = await RetainedTopicAsync(server, "fromseq");
        (await RunAsync([.. At(server), "pub", topic, "m{n}", "--count", "5"])).ExitCode.ShouldBe(0);

        var sub = await RunAsync([.. At(server), "sub", topic, "--from", "seq:4", "--count", "2"]);

        sub.ExitCode.ShouldBe(0, sub.ToString());
        sub.Lines.ShouldBe(["4\tm4", "5\tm5"], sub.ToString());
    }

    [Fact]
    public async Task Sub_from_a_relative_time_gets_what_was_published_since()
    {
        await using var server = await TestServer.StartAsync();
        var topic = await RetainedTopicAsync(server, "fromtime");
        (await RunAsync([.. At(server), "pub", topic, "recent"])).ExitCode.ShouldBe(0);

        var sub = await RunAsync([.. At(server), "sub", topic, "--from", "time:-1h", "--count", "1"]);

        sub.Lines.ShouldBe(["1\trecent"], sub.ToString());
    }

    [Fact]
    public async Task A_durable_sub_resumes_after_what_it_printed()
    {
        await using var server = await TestServer.StartAsync();
        var topic = await RetainedTopicAsync(server, "durable");
        (await RunAsync([.. At(server), "pub", topic, "m{n}", "--count", "3"])).ExitCode.ShouldBe(0);

        var first = await RunAsync([.. At(server), "sub", topic, "--durable", "billing", "--count", "2"]);
        var second = await RunAsync([.. At(server), "sub", topic, "--durable", "billing", "--count", "1"]);

        first.Lines.ShouldBe(["1\tm1", "2\tm2"], first.ToString());
        second.Lines.ShouldBe(["3\tm3"], second.ToString());
    }

    [Fact]
    public async Task Sub_output_json_prints_one_object_per_message()
    {
        await using var server = await TestServer.StartAsync();
        var topic = await RetainedTopicAsync(server, "json");
        (await RunAsync([.. At(server), "pub", topic, "payload", "--key", "k", "-H", "a=b"])).ExitCode.ShouldBe(0);

        var sub = await RunAsync([.. At(server), "sub", topic, "--count", "1", "--output", "json"]);

        sub.Lines.Length.ShouldBe(1, sub.ToString());
        using var json = JsonDocument.Parse(sub.Lines[0]);
        var message = json.RootElement;
        message.GetProperty("topic").GetString().ShouldBe(topic);
        message.GetProperty("sequence").GetInt64().ShouldBe(1);
        message.GetProperty("key").GetString().ShouldBe("k");
        message.GetProperty("headers").GetProperty("a").GetString().ShouldBe("b");
        message.GetProperty("payload").GetString().ShouldBe("payload");
        message.GetProperty("payloadEncoding").GetString().ShouldBe("text");
    }

    [Fact]
    public async Task Ctrl_C_ends_a_sub_without_count_with_exit_code_0()
    {
        await using var server = await TestServer.StartAsync();
        var topic = await RetainedTopicAsync(server, "ctrlc");
        (await RunAsync([.. At(server), "pub", topic, "only"])).ExitCode.ShouldBe(0);
        using var interrupt = new CancellationTokenSource();
        var printed = new StringWriter();
        var stdout = TextWriter.Synchronized(printed);
        var stderr = new StringWriter();
        string Printed()
        {
            lock (stdout)
            {
                // A synchronized writer locks itself around every write.
                return printed.ToString();
            }
        }

        var running = Zaichik.Cli.ZaichikCli.RunAsync([.. At(server), "sub", topic], stdout, stderr, interrupt.Token);
        await TestServer.EventuallyAsync(() => Printed().Contains("1\tonly"), "sub should print the retained message");
        interrupt.Cancel();
        var exitCode = await running.WaitAsync(TimeSpan.FromSeconds(30));

        exitCode.ShouldBe(0, stderr.ToString());
        stderr.ToString().ShouldBeEmpty();
    }
}
