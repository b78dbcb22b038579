using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Tests.Client;
using Zaichik.Tests.Processes;

namespace Zaichik.Tests.Crash;

/// <summary>
/// The broker as a child process, killed with SIGKILL after a count limit removed keyed messages whose key window still
/// runs: restarted on the same folder, it must still drop every repeat of those keys, from its <c>windows</c> file (the
/// log no longer holds them).
/// </summary>
public sealed class WindowCrashTests : IDisposable
{
    private const string Topic = "capped";
    private const int Keys = 40;
    private const int MaxMessages = 5;

    private static readonly TopicOptions Capped = new()
    {
        Durability = Durability.Always, RetentionTtl = TimeSpan.FromHours(1), CompactionWindow = TimeSpan.FromHours(1), MaxMessages = MaxMessages,
    };

    private static readonly ZaichikClientOptions ClientOptions = new() { CloseTimeout = TimeSpan.FromSeconds(1), Reconnect = new() { Enabled = false } };

    private readonly string _dataPath = Path.Combine(Path.GetTempPath(), "zaichik-window-crash-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task Keys_a_count_limit_removed_are_still_duplicates_after_a_SIGKILL()
    {
        var originals = new Dictionary<string, long>();
        var broker = await BrokerProcess.StartAsync(_dataPath);
        try
        {
            await using (var client = await ZaichikClient.ConnectAsync("127.0.0.1", broker.Port, ClientOptions))
            {
                await client.CreateTopicAsync(Topic, Capped);
                for (var i = 0; i < Keys; i++)
                {
                    var ack = await client.PublishAsync(Topic, $"first {i}", key: $"k{i}");
                    ack.Durable.ShouldBeTrue();
                    originals[$"k{i}"] = ack.Sequence;
                }

                // The sweep (every second) removes all but the newest five; then one more Always publish, whose Ack
                // means a commit after the removal, so the log on disk no longer holds the first keys either.
                using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                while (await FirstRetainedAsync(client) <= Keys - MaxMessages)
                {
                    await Task.Delay(100, deadline.Token);
                }

                (await client.PublishAsync(Topic, "unkeyed")).Durable.ShouldBeTrue();
            }

            await broker.KillAsync();
            await broker.DisposeAsync();
            broker = await BrokerProcess.StartAsync(_dataPath);

            await using var again = await ZaichikClient.ConnectAsync("127.0.0.1", broker.Port, ClientOptions);
            (await FirstRetainedAsync(again)).ShouldBeGreaterThan(Keys - MaxMessages, "the log came back without the removed messages");
            foreach (var (key, sequence) in originals)
            {
                var repeat = await again.PublishAsync(Topic, "again", key: key);
                (repeat.Duplicate, repeat.Sequence).ShouldBe((true, sequence), $"{key} was accepted moments ago, inside its hour");
            }
        }
        finally
        {
            await broker.DisposeAsync();
        }
    }

    /// <summary>The sequence of the first message the topic still holds.</summary>
    private static async Task<long> FirstRetainedAsync(ZaichikClient client)
    {
        await using var subscription = await client.SubscribeAsync(Topic, new SubscribeOptions { From = StartPosition.Retained, AckPolicy = AckPolicy.None });
        return (await ReconnectTests.ReadAsync(subscription, 1))[0].Sequence;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dataPath, recursive: true);
        }
        catch (IOException)
        {
            // Already gone, or the broker never created it.
        }
    }
}
