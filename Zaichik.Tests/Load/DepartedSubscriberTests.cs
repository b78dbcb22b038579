using System.Buffers;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Server.Storage;
using Zaichik.Server.Storage.Internal;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Load;

/// <summary>
/// What slow or departed readers pin must be released when they go: the segment files a topic without retention kept
/// for them, and every descriptor opened to read them. Counted in the storage budget and in /proc/self/fd.
/// </summary>
[Collection(LoadCollection.Name)]
public sealed class DepartedSubscriberTests(ITestOutputHelper output)
{
    private const string Topic = "departed";

    /// <summary>Small segments: 300 messages of 64 KiB span about 300 of them.</summary>
    private static readonly StorageOptions Storage = new() { PageSizeBits = 17, MemorySizeBits = 19, SegmentSizeBits = 17 };

    [Fact]
    public async Task Segments_and_descriptors_held_for_a_stalled_and_a_never_committing_subscriber_are_released_when_they_leave()
    {
        await using var server = await TestServer.StartAsync(options => options with { Storage = Storage, MaxPayloadSize = 64 * 1024 });
        var files = server.Server.Services.GetRequiredService<FileBudget>();
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync(Topic, new TopicOptions());
        var budgetBefore = files.InUse;
        var descriptorsBefore = ProcessResources.OpenFileDescriptors();

        var stalled = await StalledSubscriber.ConnectAsync(server.Port, Topic, 10_000);
        var neverCommitting = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port);
        await using var uncommitted = new MessageReader(await neverCommitting.SubscribeAsync(Topic, new SubscribeOptions { From = StartPosition.Latest }));
        var payload = new byte[64 * 1024];
        for (var i = 0; i < 300; i++)
        {
            await publisher.PublishAsync(Topic, payload);
        }

        await server.Maintenance.SweepAllAsync(CancellationToken.None);
        var pinned = Segments(server);
        output.WriteLine($"while they are connected: {pinned} segment files, {files.InUse} storage descriptors, {ProcessResources.OpenFileDescriptors()} process descriptors");
        pinned.ShouldBeGreaterThan(100, "the readers' positions keep the topic's segments");
        files.InUse.ShouldBeLessThanOrEqualTo(budgetBefore + 1 + SegmentFiles.ReservedHandles + SegmentFiles.MaxReadHandles,
            "a topic holds a bounded number of descriptors whatever its readers do");

        stalled.Dispose();
        await neverCommitting.DisposeAsync();
        await TestServer.EventuallyAsync(() => server.State.Server().Connections == 1, "only the publisher is left");
        await server.Maintenance.SweepAllAsync(CancellationToken.None);

        await TestServer.EventuallyAsync(() => Segments(server) <= 2, $"a topic without retention frees what nobody reads, without another publish ({Segments(server)} segment files left)");
        output.WriteLine($"after they left: {Segments(server)} segment files, {files.InUse} storage descriptors, {ProcessResources.OpenFileDescriptors()} process descriptors");
        files.InUse.ShouldBeLessThanOrEqualTo(budgetBefore + 1 + SegmentFiles.ReservedHandles, "the open topic keeps its commit file and its reserve, nothing more");
        if (descriptorsBefore is { } before)
        {
            ProcessResources.OpenFileDescriptors()!.Value.ShouldBeLessThanOrEqualTo(before + 8, "no descriptor is left behind for readers that left");
        }
    }

    private static int Segments(TestServer server) =>
        Directory.GetFiles(Path.Combine(server.DataPath, "topics", Topic), SegmentFiles.Prefix + "*").Length;
}
