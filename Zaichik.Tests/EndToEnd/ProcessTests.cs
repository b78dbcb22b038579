using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;
using Zaichik.Tests.Processes;

namespace Zaichik.Tests.EndToEnd;

/// <summary>The broker as its own process, the way the README runs it.</summary>
public sealed class ProcessTests : IDisposable
{
    private readonly string _dataPath = Path.Combine(Path.GetTempPath(), "zaichik-process-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task SIGTERM_stops_the_server_with_exit_code_0_and_a_restart_replays_what_it_had()
    {
        await using (var server = await BrokerProcess.StartAsync(_dataPath))
        {
            await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port);
            await client.CreateTopicAsync("kept", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
            for (var i = 0; i < 50; i++)
            {
                await client.PublishAsync("kept", $"m{i}");
            }

            (await server.StopAsync()).ShouldBe(0, server.Output);
        }

        await using var restarted = await BrokerProcess.StartAsync(_dataPath);
        await using var consumer = await ZaichikClient.ConnectAsync("127.0.0.1", restarted.Port);
        await using var reader = new MessageReader(await consumer.SubscribeAsync("kept", new SubscribeOptions { Prefetch = 50, AutoCommit = true }));

        (await reader.NextAsync(50)).Select(m => m.PayloadText).ShouldBe(Enumerable.Range(0, 50).Select(i => $"m{i}"));
    }

    [Fact]
    public async Task A_confirmed_Commit_of_a_durable_consumer_on_an_Always_topic_survives_kill_9()
    {
        int confirmed;
        await using (var server = await BrokerProcess.StartAsync(_dataPath))
        {
            await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port);
            await client.CreateTopicAsync("ledger", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1), Durability = Durability.Always });
            for (var i = 1; i <= 200; i++)
            {
                await client.PublishAsync("ledger", $"m{i}");
            }

            await using var reader = new MessageReader(await client.SubscribeAsync("ledger", new SubscribeOptions { DurableName = "billing", Prefetch = 200 }));
            var messages = await reader.NextAsync(137);

            // Keep the topic's flushes busy with 20 MiB from another connection, so a position written "soon" would
            // still be in memory at the kill: only a Pong that waits for the fsync makes the assertion below hold.
            await using var flooder = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port);
            var bulk = new byte[64 * 1024];
            var flood = Enumerable.Range(0, 320).Select(_ => flooder.PublishAsync("ledger", bulk).AsTask()).ToArray();
            foreach (var message in messages)
            {
                await client.CommitAsync(message);
            }

            await client.ConfirmCommitsAsync();
            confirmed = (int)messages[^1].Sequence;
            await server.KillAsync();
            await Task.WhenAll(flood).ContinueWith(_ => { }, TaskScheduler.Default);
        }

        await using var restarted = await BrokerProcess.StartAsync(_dataPath);
        await using var again = await ZaichikClient.ConnectAsync("127.0.0.1", restarted.Port);
        await using var resumed = new MessageReader(await again.SubscribeAsync("ledger", new SubscribeOptions { DurableName = "billing" }));
        (await resumed.NextAsync()).Sequence.ShouldBe(confirmed + 1, "the Pong came after the position was fsynced");
    }

    [Fact]
    public async Task Help_prints_the_options_and_exits_0_without_starting()
    {
        var (exitCode, output) = await BrokerProcess.RunToExitAsync("--help", "--data", _dataPath);

        exitCode.ShouldBe(0, output);
        output.ShouldContain("--port <port>");
        output.ShouldContain("--admin <url>");
        output.ShouldContain("--Zaichik:<Name> <value>");
        output.ShouldNotContain("listening on");
        Directory.Exists(_dataPath).ShouldBeFalse("help starts nothing and creates no data folder");
    }

    [Fact]
    public async Task Version_prints_the_version_and_exits_0()
    {
        var (exitCode, output) = await BrokerProcess.RunToExitAsync("--version");

        exitCode.ShouldBe(0, output);
        output.Trim().ShouldBe($"Zaichik {BrokerCommandLine.Version}");
        BrokerCommandLine.Version.ShouldNotBe("unknown");
    }

    [Theory]
    [InlineData("--prot", "unknown option '--prot'")]
    [InlineData("--porT=9000", "unknown option '--porT'")]
    [InlineData("8889", "unexpected argument '8889'")]
    [InlineData("--port", "option '--port' needs a value")]
    public async Task A_mistyped_command_line_exits_2_naming_the_argument(string argument, string expected)
    {
        var (exitCode, output) = await BrokerProcess.RunToExitAsync("--data", _dataPath, argument);

        exitCode.ShouldBe(2, output);
        output.Trim().ShouldBe($"Zaichik: {expected}; see --help");
        Directory.Exists(_dataPath).ShouldBeFalse("nothing starts");
    }

    [Fact]
    public async Task A_port_in_use_exits_4_with_one_line_naming_host_and_port()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;

        var (exitCode, output) = await BrokerProcess.RunToExitAsync("--port", port.ToString(), "--data", _dataPath);

        exitCode.ShouldBe(4, output);
        output.ShouldContain($"Zaichik cannot start: 127.0.0.1:{port} is already in use");
        output.ShouldNotContain("http://");
        output.ShouldNotContain("   at ", customMessage: "no stack trace");
    }

    [Fact]
    public async Task An_admin_port_in_use_exits_4_with_one_line_naming_it_and_the_switch()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var adminPort = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;

        var (exitCode, output) = await BrokerProcess.RunToExitAsync(
            "--port", BrokerProcess.FreePort().ToString(), "--data", _dataPath, "--admin", $"http://127.0.0.1:{adminPort}");

        exitCode.ShouldBe(4, output);
        output.Split('\n').Single(line => line.Contains("cannot start", StringComparison.Ordinal))
            .ShouldBe($"Zaichik cannot start: 127.0.0.1:{adminPort} is already in use (another broker or program listens there); choose another with --admin");
        output.ShouldNotContain("   at ", customMessage: "no stack trace");
    }

    [Fact]
    public async Task The_admin_listener_is_named_in_the_start_up_line_and_answers_there()
    {
        await using var broker = await BrokerProcess.StartAsync(_dataPath, port: null, openFileLimit: null, "--admin", "http://127.0.0.1:0");

        var line = broker.Output.Split('\n').Single(text => text.Contains("listening on", StringComparison.Ordinal));
        var url = System.Text.RegularExpressions.Regex.Match(line, @"admin (http://127\.0\.0\.1:\d+)").Groups[1].Value;
        url.ShouldNotBeEmpty(line);
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        (await http.GetStringAsync("/readyz")).Trim().ShouldBe("ready");
        (await http.GetStringAsync("/api/server")).ShouldContain($"\"address\":\"127.0.0.1:{broker.Port}\"");
    }

    [Fact]
    public async Task Turning_the_admin_listener_off_says_so_in_the_start_up_line()
    {
        await using var broker = await BrokerProcess.StartAsync(_dataPath, port: null, openFileLimit: null, "--admin", "off");

        broker.Output.Split('\n').Single(text => text.Contains("listening on", StringComparison.Ordinal)).ShouldContain("admin off");
    }

    [Fact]
    public async Task The_start_up_line_says_version_listener_data_durability_auth_and_auto_create()
    {
        await using var broker = await BrokerProcess.StartAsync(_dataPath, port: null, openFileLimit: null, "--Zaichik:Durability", "Always", "--Zaichik:AutoCreateTopics", "false");

        var line = broker.Output.Split('\n').Single(text => text.Contains("listening on", StringComparison.Ordinal));

        line.ShouldContain($"Zaichik {BrokerCommandLine.Version} listening on 127.0.0.1:{broker.Port} (TCP)");
        line.ShouldContain($"data in {Path.GetFullPath(_dataPath)}");
        line.ShouldContain("durability Always");
        line.ShouldContain("tokens off");
        line.ShouldContain("auto-create off");
    }

    [Fact]
    public async Task Invalid_configuration_exits_with_code_2_and_says_why()
    {
        var (exitCode, output) = await BrokerProcess.RunToExitAsync("--port", "1", "--Zaichik:MaxPrefetch", "0");

        exitCode.ShouldBe(2);
        output.ShouldContain("MaxPrefetch");
    }

    [Fact]
    public async Task A_second_broker_on_the_same_data_folder_exits_with_code_3_naming_the_folder_and_the_broker_holding_it()
    {
        await using var first = await BrokerProcess.StartAsync(_dataPath);

        var (exitCode, output) = await BrokerProcess.RunToExitAsync("--port", BrokerProcess.FreePort().ToString(), "--data", _dataPath);

        exitCode.ShouldBe(3, output);
        var line = output.Split('\n').Single(text => text.Contains("in use", StringComparison.Ordinal));
        line.ShouldContain(Path.GetFullPath(_dataPath));
        line.ShouldContain($"process {first.Pid}");
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", first.Port);
        (await client.PublishAsync("still-served", "x")).Sequence.ShouldBe(1, "the first broker is untouched");
    }

    [Fact]
    public async Task SIGTERM_stops_a_broker_with_a_quarantined_topic_and_one_whose_folder_was_deleted_under_it_within_its_shutdown_timeout()
    {
        await using (var setup = await BrokerProcess.StartAsync(_dataPath))
        {
            await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", setup.Port);
            await client.PublishAsync("fifo", "x");
            (await setup.StopAsync()).ShouldBe(0, setup.Output);
        }

        var segment = Path.Combine(_dataPath, "topics", "fifo", "log.0");
        File.Delete(segment);
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", segment))
        {
            await mkfifo.WaitForExitAsync();
        }

        await using var server = await BrokerProcess.StartAsync(_dataPath, arguments: ["--Zaichik:ShutdownTimeout", "00:00:05"]);
        await using (var client = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port))
        {
            (await Should.ThrowAsync<ZaichikServerException>(async () => await client.PublishAsync("fifo", "y"))).Message.ShouldContain("quarantined");
            await client.CreateTopicAsync("gone", new TopicOptions { Durability = Durability.Always });
            await client.PublishAsync("gone", "before");
            Directory.Delete(Path.Combine(_dataPath, "topics", "gone"), recursive: true);
            (await Should.ThrowAsync<ZaichikServerException>(async () => await client.PublishAsync("gone", "after"))).Code.ShouldBe(ErrorCode.StorageFailure);

            // A topic failing its commits probes its disk once a second; it does not spin.
            var cpu = server.CpuTime;
            await Task.Delay(TimeSpan.FromSeconds(3));
            (server.CpuTime - cpu).ShouldBeLessThan(TimeSpan.FromSeconds(1.5), "3 s of a broker with a failing topic and nothing to do");
        }

        var (exitCode, took) = await server.StopTimedAsync();
        exitCode.ShouldBe(0, server.Output);
        took.ShouldBeLessThan(TimeSpan.FromSeconds(5 + 10), "SIGTERM stops it within its shutdown timeout plus a few seconds");
    }

    [Fact]
    public async Task Under_a_low_open_file_limit_a_broker_answers_StorageFailure_and_never_aborts()
    {
        const int topics = 400;
        await using var server = await BrokerProcess.StartAsync(_dataPath, openFileLimit: 600);
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port);

        // Idle topics are closed to make room: every one of them takes a message.
        for (var i = 0; i < topics; i++)
        {
            await client.PublishAsync($"t{i}", "x");
        }

        // Subscribed topics stay open; past the descriptor budget, opening one more is refused.
        var refused = 0;
        var subscriptions = new List<ZaichikSubscription>();
        for (var i = 0; i < topics; i++)
        {
            try
            {
                subscriptions.Add(await client.SubscribeAsync($"t{i}", new SubscribeOptions { From = StartPosition.Latest }));
            }
            catch (ZaichikServerException error)
            {
                error.Code.ShouldBe(ErrorCode.StorageFailure, error.Message);
                refused++;
            }
        }

        refused.ShouldBeGreaterThan(0, "600 descriptors cannot hold 400 open topics' files");
        (await client.PublishAsync("t0", "still served")).Sequence.ShouldBe(2);
        server.HasExited.ShouldBeFalse(server.Output);
        server.Output.ShouldNotContain("Out of memory");
        foreach (var subscription in subscriptions)
        {
            await subscription.DisposeAsync();
        }

        (await server.StopAsync()).ShouldBe(0, server.Output);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dataPath, recursive: true);
        }
        catch (IOException)
        {
            // Already gone, or the server never created it.
        }
    }
}
