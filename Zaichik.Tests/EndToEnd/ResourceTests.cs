using Xunit.Abstractions;
using Zaichik.Client;

namespace Zaichik.Tests.EndToEnd;

// The managed heap is process-wide: measured alone, with the other whole-process measurements.
[Collection(Load.LoadCollection.Name)]
public sealed class ResourceTests(ITestOutputHelper output)
{
    [Fact]
    public async Task An_idle_topic_costs_well_under_one_MiB_of_memory()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.PublishAsync("warm-up", "x");
        const int topics = 200;
        var before = SettledHeapBytes();

        for (var i = 0; i < topics; i++)
        {
            await client.CreateTopicAsync($"idle-{i}", new TopicOptions { RetentionTtl = TimeSpan.FromMinutes(1) });
            await client.PublishAsync($"idle-{i}", "one message");
        }

        var perTopic = (SettledHeapBytes() - before) / topics;
        output.WriteLine($"{perTopic:N0} bytes of managed heap per idle topic");
        perTopic.ShouldBeLessThan(512 * 1024, $"an idle topic holds {perTopic:N0} bytes");
    }

    private static long SettledHeapBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
