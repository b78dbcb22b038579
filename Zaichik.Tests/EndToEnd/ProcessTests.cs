using Zaichik.Client;
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
    public async Task Invalid_configuration_exits_with_code_2_and_says_why()
    {
        var (exitCode, output) = await BrokerProcess.RunToExitAsync("--port", "1", "--Zaichik:MaxPrefetch", "0");

        exitCode.ShouldBe(2);
        output.ShouldContain("MaxPrefetch");
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
