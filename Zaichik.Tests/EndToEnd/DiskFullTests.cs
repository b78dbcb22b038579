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
    public async Task When_the_disk_takes_writes_again_the_topic_reopens_by_itself_and_keeps_every_acknowledged_message()
    {
        Assert.True(_mounted, "mounting a tmpfs needs root; CI runs as root");
        await using var server = await TestServer.StartAsync(options => options with { DataPath = Path.Combine(_mount, "data") }, dataPath: Path.Combine(_mount, "data"));
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync("full", new TopicOptions { Durability = Durability.Always, RetentionTtl = TimeSpan.FromHours(1) });
        var acknowledged = new List<string> { "before the disk filled" };
        await publisher.PublishAsync("full", acknowledged[0]);
        var subscriber = await server.ConnectAsync();
        var subscriberClosed = new TaskCompletionSource<ZaichikServerException>(TaskCreationOptions.RunContinuationsAsynchronously);
        subscriber.ServerError += (_, error) => subscriberClosed.TrySetResult(error);
        await using var live = new MessageReader(await subscriber.SubscribeAsync("full"));
        (await live.NextAsync()).PayloadText.ShouldBe(acknowledged[0]);

        var filler = Path.Combine(_mount, "filler");
        await FillAsync(filler);
        var refused = await Should.ThrowAsync<ZaichikServerException>(async () =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                var payload = $"{i:D5}" + new string('x', 1_000);
                await publisher.PublishAsync("full", payload);
                acknowledged.Add(payload);
            }
        });
        refused.Code.ShouldBe(ErrorCode.StorageFailure);

        File.Delete(filler);
        // The topic probes its disk every second; until it has reopened, publishes are still refused.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                await publisher.PublishAsync("full", "after the disk came back");
                break;
            }
            catch (ZaichikServerException error) when (error.Code == ErrorCode.StorageFailure && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
        }
        acknowledged.Add("after the disk came back");

        // The subscriber's log position may no longer exist: its connection is closed with StorageFailure.
        var closing = await subscriberClosed.Task.WaitAsync(MessageReader.Deadline);
        closing.Code.ShouldBe(ErrorCode.StorageFailure);
        closing.Message.ShouldContain("subscribe again");
        var again = await server.ConnectAsync();
        await using var replay = new MessageReader(await again.SubscribeAsync("full", new SubscribeOptions { Prefetch = 1000, AutoCommit = true }));
        var replayed = new List<string>();
        while (replayed.Count == 0 || replayed[^1] != "after the disk came back")
        {
            replayed.Add((await replay.NextAsync()).PayloadText);
        }

        replayed.ShouldBe(acknowledged, "every acknowledged message, once, in order, and nothing that was refused");
        output.WriteLine($"{acknowledged.Count} acknowledged messages survived the failure and the reopen");
    }

    [Fact]
    public async Task A_topic_that_cannot_open_on_a_full_disk_is_refused_with_StorageFailure_not_quarantined_and_works_once_there_is_room()
    {
        Assert.True(_mounted, "mounting a tmpfs needs root; CI runs as root");
        await using var server = await TestServer.StartAsync(options => options with { DataPath = Path.Combine(_mount, "data") }, dataPath: Path.Combine(_mount, "data"));
        var client = await server.ConnectAsync();
        await client.PublishAsync("existing", "x");
        var filler = Path.Combine(_mount, "filler");
        await FillAsync(filler);

        // The catalog still has room for the record; the topic's own files do not.
        await client.CreateTopicAsync("new-on-full-disk");
        var error = await Should.ThrowAsync<ZaichikServerException>(async () => await client.PublishAsync("new-on-full-disk", "y"));

        error.Code.ShouldBe(ErrorCode.StorageFailure);
        error.Message.ShouldNotContain("quarantined");
        client.IsConnected.ShouldBeTrue();
        await using (new MessageReader(await client.SubscribeAsync("existing", new SubscribeOptions { From = StartPosition.Latest })))
        {
        }

        File.Delete(filler);
        (await client.PublishAsync("new-on-full-disk", "y")).Sequence.ShouldBe(1, "the topic was never quarantined for a full disk");
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
