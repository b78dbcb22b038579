using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Zaichik.Client;

namespace Zaichik.Tests.EndToEnd;

/// <summary>The broker as its own process, the way the README runs it.</summary>
public sealed class ProcessTests : IDisposable
{
    private readonly string _dataPath = Path.Combine(Path.GetTempPath(), "zaichik-process-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task SIGTERM_stops_the_server_with_exit_code_0_and_a_restart_replays_what_it_had()
    {
        var port = FreePort();
        using (var server = StartServer(port))
        {
            await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", port);
            await client.CreateTopicAsync("kept", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
            for (var i = 0; i < 50; i++)
            {
                await client.PublishAsync("kept", $"m{i}");
            }

            await StopAsync(server);
            server.ExitCode.ShouldBe(0);
        }

        using var restarted = StartServer(port);
        try
        {
            await using var consumer = await ZaichikClient.ConnectAsync("127.0.0.1", port);
            await using var reader = new MessageReader(await consumer.SubscribeAsync("kept", new SubscribeOptions { Prefetch = 50, AutoCommit = true }));

            (await reader.NextAsync(50)).Select(m => m.PayloadText).ShouldBe(Enumerable.Range(0, 50).Select(i => $"m{i}"));
        }
        finally
        {
            await StopAsync(restarted);
        }
    }

    [Fact]
    public async Task Invalid_configuration_exits_with_code_2_and_says_why()
    {
        using var server = Launch(["--port", "1", "--Zaichik:MaxPrefetch", "0"]);
        var output = await server.StandardOutput.ReadToEndAsync().WaitAsync(MessageReader.Deadline);
        await server.WaitForExitAsync().WaitAsync(MessageReader.Deadline);

        server.ExitCode.ShouldBe(2);
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

    private Process StartServer(int port)
    {
        var server = Launch(["--port", port.ToString(), "--data", _dataPath]);
        var ready = new TaskCompletionSource();
        server.OutputDataReceived += (_, line) =>
        {
            if (line.Data?.Contains("listening on", StringComparison.Ordinal) == true)
            {
                ready.TrySetResult();
            }
        };
        server.BeginOutputReadLine();
        ready.Task.Wait(MessageReader.Deadline).ShouldBeTrue("the server did not report that it was listening");
        return server;
    }

    private static Process Launch(string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Zaichik.Server.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return Process.Start(start) ?? throw new InvalidOperationException("could not start the server process");
    }

    private static async Task StopAsync(Process server)
    {
        if (server.HasExited)
        {
            return;
        }

        Process.Start("kill", ["-TERM", server.Id.ToString()])!.WaitForExit();
        try
        {
            await server.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
        }
        catch (TimeoutException)
        {
            server.Kill(entireProcessTree: true);
            throw;
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
