using System.Diagnostics;
using Xunit.Abstractions;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Tests.EndToEnd;

/// <summary>
/// A full disk, made real: the data folder is a small tmpfs mount (this needs root, as on the CI machine). The
/// publisher gets StorageFailure and reads go on.
/// </summary>
public sealed class DiskFullTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _mount = Path.Combine(Path.GetTempPath(), "zaichik-full-" + Guid.NewGuid().ToString("N"));
    private bool _mounted;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_mount);
        _mounted = await RunAsync("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", _mount) == 0;
    }

    [Fact]
    public async Task A_full_disk_refuses_publishes_with_StorageFailure_and_reads_keep_working()
    {
        Assert.True(_mounted, "mounting a tmpfs needs root; CI runs as root");
        await using var server = await TestServer.StartAsync(options => options with { DataPath = Path.Combine(_mount, "data") }, dataPath: Path.Combine(_mount, "data"));
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("full", new TopicOptions { Durability = Durability.Always, RetentionTtl = TimeSpan.FromHours(1) });
        var first = await client.PublishAsync("full", "before the disk filled");
        first.Durable.ShouldBeTrue();

        var filler = Path.Combine(_mount, "filler");
        await FillAsync(filler);
        var refused = await Should.ThrowAsync<ZaichikServerException>(async () =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                await client.PublishAsync("full", new string('x', 1_000));
            }
        });
        output.WriteLine($"refused with: {refused.Message}");

        refused.Code.ShouldBe(ErrorCode.StorageFailure);
        await using (var reader = new MessageReader(await client.SubscribeAsync("full")))
        {
            (await reader.NextAsync()).PayloadText.ShouldBe("before the disk filled");
        }

        File.Delete(filler);
    }

    [Fact]
    public async Task Creating_a_topic_on_a_full_disk_is_refused_with_StorageFailure_and_the_connection_stays_open()
    {
        Assert.True(_mounted, "mounting a tmpfs needs root; CI runs as root");
        await using var server = await TestServer.StartAsync(options => options with { DataPath = Path.Combine(_mount, "data") }, dataPath: Path.Combine(_mount, "data"));
        var client = await server.ConnectAsync();
        await client.PublishAsync("existing", "x");
        await FillAsync(Path.Combine(_mount, "filler"));

        var error = await Should.ThrowAsync<ZaichikServerException>(async () => await client.CreateTopicAsync("new-on-full-disk"));

        error.Code.ShouldBe(ErrorCode.StorageFailure);
        client.IsConnected.ShouldBeTrue();
        await using var reader = new MessageReader(await client.SubscribeAsync("existing", new SubscribeOptions { From = StartPosition.Latest }));
    }

    public async Task DisposeAsync()
    {
        if (_mounted)
        {
            await RunAsync("umount", "-l", _mount);
        }

        Directory.Delete(_mount, recursive: true);
    }

    private static async Task FillAsync(string path)
    {
        await using var file = File.Create(path);
        var block = new byte[64 * 1024];
        try
        {
            while (true)
            {
                await file.WriteAsync(block);
                await file.FlushAsync();
            }
        }
        catch (IOException)
        {
            // The disk is full.
        }
    }

    private static async Task<int> RunAsync(string command, params string[] arguments)
    {
        var start = new ProcessStartInfo(command) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        await process.WaitForExitAsync();
        return process.ExitCode;
    }
}
