using Xunit.Abstractions;
using Zaichik.Client;
using Zaichik.Tests.Load;

namespace Zaichik.Tests.EndToEnd;

// The managed heap is process-wide: measured alone, with the other whole-process measurements.
[Collection(LoadCollection.Name)]
public sealed class ResourceTests(ITestOutputHelper output)
{
    [Fact]
    public async Task An_idle_topic_costs_at_most_8_KiB_of_memory_and_no_descriptor()
    {
        await using var server = await TestServer.StartAsync(options => options with { TopicIdleTimeout = TimeSpan.Zero });
        var client = await server.ConnectAsync();
        await client.PublishAsync("warm-up", "x");
        await server.Maintenance.CloseIdleAsync(CancellationToken.None);
        const int topics = 2_000;
        var before = ProcessResources.SettledHeapBytes();
        var descriptorsBefore = ProcessResources.OpenFileDescriptors();

        for (var i = 0; i < topics; i++)
        {
            await client.CreateTopicAsync($"idle-{i}", new TopicOptions { RetentionTtl = TimeSpan.FromMinutes(1) });
            await client.PublishAsync($"idle-{i}", "one message");
        }

        // A pass skips a topic whose gate is held at that moment (the background sweep is visiting it); a later pass
        // closes it.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (server.Registry.OpenCount > 0 && DateTime.UtcNow < deadline)
        {
            await server.Maintenance.CloseIdleAsync(CancellationToken.None);
            if (server.Registry.OpenCount > 0)
            {
                await Task.Delay(10);
            }
        }

        server.Registry.OpenCount.ShouldBe(0);
        var perTopic = (ProcessResources.SettledHeapBytes() - before) / topics;
        output.WriteLine($"{perTopic:N0} bytes of managed heap per idle topic");
        perTopic.ShouldBeLessThan(8 * 1024, $"an idle topic holds {perTopic:N0} bytes");
        if (descriptorsBefore is { } descriptors)
        {
            ProcessResources.OpenFileDescriptors()!.Value.ShouldBeLessThanOrEqualTo(descriptors + 8, "closed topics hold no descriptor");
        }
    }
}
