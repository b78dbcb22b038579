using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using Xunit.Abstractions;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Load;

/// <summary>
/// A subscriber that stops reading its socket (with acks or without), and one that never commits, must cost the broker
/// a bounded amount of memory (their prefetch and a socket's worth of buffers, not the topic), and must hold back
/// neither the publisher nor the other subscribers.
/// </summary>
[Collection(LoadCollection.Name)]
public sealed class SlowConsumerTests(ITestOutputHelper output)
{
    private const string Topic = "slow-consumers";
    private const int Messages = 200_000;
    private const int PayloadSize = 1024;
    private const int PublishWindow = 1_000;
    private const int StalledPrefetch = 10_000;
    private const int NeverCommittingPrefetch = 1_000;
    private const int ConsumerPrefetch = 1_000;
    private const int CommitEvery = 100;

    /// <summary>
    /// Settled managed heap growth allowed over the run, with the slow consumers still connected. Measured: 16.1, 17.5
    /// and 18.5 MiB for 50,000, 200,000 and 400,000 messages, and 16.9 to 20.3 MiB over seven 200,000-message runs (some
    /// with the CPU saturated): a fixed cost (pools, log pages, client buffers, the never-committing client's 1,000
    /// messages), not one per message. Holding the 200,000 messages for the slow ones would take ~200 MiB.
    /// </summary>
    private const long HeapGrowthBound = 64L * 1024 * 1024;

    /// <summary>
    /// Peak managed heap during the run, garbage included, above the settled start. Measured: 39 to 44 MiB when this was
    /// written; 103 to 106 MiB on 2026-11-27, the same at 125c77c and with a stalled no-ack subscriber added (garbage
    /// between collections: the settled growth stays at 20 to 25 MiB).
    /// </summary>
    private const long PeakHeapGrowthBound = 128L * 1024 * 1024;

    /// <summary>Peak working set during the run above the start. Measured: 16 to 51 MiB.</summary>
    private const long PeakWorkingSetGrowthBound = 256L * 1024 * 1024;

    /// <summary>Not a performance figure: only how long a stalled run may take before the test stops waiting for it.</summary>
    private static readonly TimeSpan StallGuard = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task Slow_consumers_hold_back_neither_the_publisher_nor_other_subscribers_and_cost_bounded_memory()
    {
        await using var server = await TestServer.StartAsync();
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync(Topic, new TopicOptions());
        using var stalled = await StalledSubscriber.ConnectAsync(server.Port, Topic, StalledPrefetch);

        // Without acks nothing but the socket paces delivery: the broker must still hold no more than a socket's worth.
        using var stalledWithoutAcks = await StalledSubscriber.ConnectAsync(server.Port, Topic, 1, AckPolicy.None);
        var neverCommitting = await server.ConnectAsync();
        await using var uncommitted = new MessageReader(await neverCommitting.SubscribeAsync(Topic, new SubscribeOptions { From = StartPosition.Latest, Prefetch = NeverCommittingPrefetch }));
        var consumers = new[] { await server.ConnectAsync(), await server.ConnectAsync() };
        var subscriptions = new List<ZaichikSubscription>();
        foreach (var consumer in consumers)
        {
            subscriptions.Add(await consumer.SubscribeAsync(Topic, new SubscribeOptions { From = StartPosition.Latest, Prefetch = ConsumerPrefetch }));
        }

        // Everything the test keeps is allocated before the heap is first measured: the offset each sequence number was
        // stored at, and what each consumer received.
        var storedAt = new long[Messages];
        var received = consumers.Select(_ => new Received(new int[Messages], new long[Messages])).ToArray();
        var heapBefore = ProcessResources.SettledHeapBytes();
        var workingSetBefore = Environment.WorkingSet;
        long peakHeap, peakWorkingSet;
        var stopwatch = Stopwatch.StartNew();
        await using (var sampler = new ResourceSampler(TimeSpan.FromMilliseconds(50)))
        {
            var consuming = consumers.Select((consumer, i) => ConsumeAsync(consumer, subscriptions[i], received[i])).ToList();
            var overtaken = await PublishAllAsync(publisher, storedAt).WaitAsync(StallGuard);
            output.WriteLine($"publisher: {Messages:N0} acks after {stopwatch.Elapsed.TotalSeconds:0.0} s ({overtaken:N0} stored before a publish issued earlier; see PublishOrderTests)");
            await Task.WhenAll(consuming).WaitAsync(StallGuard);
            output.WriteLine($"consumers: {Messages:N0} each after {stopwatch.Elapsed.TotalSeconds:0.0} s");
            await sampler.DisposeAsync();
            (peakHeap, peakWorkingSet) = (sampler.PeakHeapBytes, sampler.PeakWorkingSetBytes);
            output.WriteLine($"during the run ({sampler.Samples} samples): peak managed heap {ProcessResources.Mib(peakHeap)} (garbage included), "
                + $"peak working set {ProcessResources.Mib(peakWorkingSet)} (from {ProcessResources.Mib(workingSetBefore)})");
        }

        // The slow ones are still connected and still owed messages: whatever the broker holds for them is counted here.
        var heapAfter = ProcessResources.SettledHeapBytes();
        output.WriteLine($"managed heap settled: before {ProcessResources.Mib(heapBefore)}, after {ProcessResources.Mib(heapAfter)}, growth {ProcessResources.Mib(heapAfter - heapBefore)}");
        output.WriteLine($"stalled subscriber: {stalled.Available:N0} bytes waiting unread in its socket");

        foreach (var consumer in received)
        {
            // Offsets only increase (checked as they arrived), and each message is the one its publish was acknowledged at:
            // so each consumer received every message, once, in the order the broker stored them.
            for (var i = 0; i < Messages; i++)
            {
                if (storedAt[consumer.Sequences[i]] != consumer.Offsets[i])
                {
                    throw new ShouldAssertException($"message {i} received carries sequence {consumer.Sequences[i]} at offset {consumer.Offsets[i]}, but that sequence was acknowledged at {storedAt[consumer.Sequences[i]]}");
                }
            }
        }

        (heapAfter - heapBefore).ShouldBeLessThan(HeapGrowthBound, $"the broker holds {ProcessResources.Mib(heapAfter - heapBefore)} more after the run: it buffers for the slow consumers");
        (peakHeap - heapBefore).ShouldBeLessThan(PeakHeapGrowthBound, $"the managed heap peaked at {ProcessResources.Mib(peakHeap)} during the run");
        (peakWorkingSet - workingSetBefore).ShouldBeLessThan(PeakWorkingSetGrowthBound, $"the working set peaked at {ProcessResources.Mib(peakWorkingSet)} during the run");
        stalled.Available.ShouldBeGreaterThan(0, "the stalled subscriber was sent messages it never read");
        stalledWithoutAcks.Available.ShouldBeGreaterThan(0, "the stalled no-ack subscriber was sent messages it never read");
        (await uncommitted.NextAsync(NeverCommittingPrefetch)).Count.ShouldBe(NeverCommittingPrefetch);
    }

    /// <summary>Publishes every message, a window at a time, recording each one's offset; returns how many were stored before an earlier one.</summary>
    private static async Task<int> PublishAllAsync(ZaichikClient publisher, long[] storedAt)
    {
        // One buffer per publish in flight, reused once its window is acknowledged.
        var payloads = Enumerable.Range(0, PublishWindow).Select(_ => Enumerable.Range(0, PayloadSize).Select(i => (byte)i).ToArray()).ToArray();
        var acks = new Task<PublishResult>[PublishWindow];
        var overtaken = 0;
        for (var start = 0; start < Messages; start += PublishWindow)
        {
            for (var i = 0; i < PublishWindow; i++)
            {
                BinaryPrimitives.WriteInt32BigEndian(payloads[i], start + i);
                acks[i] = publisher.PublishAsync(Topic, payloads[i]).AsTask();
            }

            var results = await Task.WhenAll(acks);
            for (var i = 0; i < PublishWindow; i++)
            {
                storedAt[start + i] = results[i].Sequence;
                overtaken += i > 0 && results[i].Sequence < results[i - 1].Sequence ? 1 : 0;
            }
        }

        return overtaken;
    }

    /// <summary>Receives every message, checking offsets only increase, committing as it goes.</summary>
    private static async Task ConsumeAsync(ZaichikClient consumer, ZaichikSubscription subscription, Received received)
    {
        var count = 0;
        var lastOffset = -1L;
        await foreach (var message in subscription)
        {
            if (message.Sequence <= lastOffset || message.Payload.Length != PayloadSize)
            {
                throw new ShouldAssertException($"message {count} at offset {message.Sequence} ({message.Payload.Length} bytes) follows offset {lastOffset}");
            }

            received.Sequences[count] = BinaryPrimitives.ReadInt32BigEndian(message.Payload.Span);
            received.Offsets[count] = lastOffset = message.Sequence;
            if (++count % CommitEvery == 0)
            {
                await consumer.CommitAsync(message);
            }

            if (count == Messages)
            {
                return;
            }
        }

        throw new ShouldAssertException($"the subscription ended after {count} of {Messages} messages");
    }

    /// <summary>What one consumer received, in arrival order: each message's sequence number and offset.</summary>
    private sealed record Received(int[] Sequences, long[] Offsets);
}
