using System.Buffers.Binary;
using Microsoft.Extensions.Time.Testing;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Tests.EndToEnd;

/// <summary>Sequences on the wire: numbering, no reuse across restarts, and subscriptions that start at a sequence or a time.</summary>
public sealed class SequenceTests
{
    private static readonly TopicOptions Retained = new() { RetentionTtl = TimeSpan.FromHours(1) };

    [Fact]
    public async Task Each_topic_numbers_its_messages_from_one_and_a_restart_never_gives_a_number_again()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("a", Retained);
        await client.CreateTopicAsync("b", Retained with { Durability = Durability.Always });
        var a = new List<long>();
        var b = new List<long>();
        for (var i = 0; i < 100; i++)
        {
            a.Add((await client.PublishAsync("a", $"a{i}")).Sequence);
            b.Add((await client.PublishAsync("b", $"b{i}")).Sequence);
        }

        await server.RestartAsync();
        var again = await server.ConnectAsync();
        var afterA = await again.PublishAsync("a", "after");
        var afterB = await again.PublishAsync("b", "after");

        a.ShouldBe(Enumerable.Range(1, 100).Select(i => (long)i));
        b.ShouldBe(Enumerable.Range(1, 100).Select(i => (long)i));
        afterA.Sequence.ShouldBe(101);
        afterB.Sequence.ShouldBe(101);
        await using var reader = new MessageReader(await again.SubscribeAsync("a", new SubscribeOptions { Prefetch = 200, AutoCommit = true }));
        (await reader.NextAsync(101)).Select(m => m.Sequence).ShouldBe(Enumerable.Range(1, 101).Select(i => (long)i));
    }

    [Fact]
    public async Task A_subscription_from_a_sequence_starts_at_that_message_and_its_Ack_says_so()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("replay", Retained);
        for (var i = 1; i <= 50; i++)
        {
            await client.PublishAsync("replay", $"m{i}");
        }

        var consumer = await server.ConnectAsync();
        await using var past = new MessageReader(await consumer.SubscribeAsync("replay", new SubscribeOptions { From = StartPosition.Sequence(20), Prefetch = 100, AutoCommit = true }));
        var other = await server.ConnectAsync();
        await using var future = new MessageReader(await other.SubscribeAsync("replay", new SubscribeOptions { From = StartPosition.Sequence(55), Prefetch = 100, AutoCommit = true }));

        past.Subscription.StartSequence.ShouldBe(20);
        future.Subscription.StartSequence.ShouldBe(55, "a sequence past the last one waits for it");
        (await past.NextAsync(31)).Select(m => m.PayloadText).ShouldBe(Enumerable.Range(20, 31).Select(i => $"m{i}"));
        for (var i = 51; i <= 56; i++)
        {
            await client.PublishAsync("replay", $"m{i}");
        }

        (await future.NextAsync(2)).Select(m => m.Sequence).ShouldBe([55L, 56L]);
    }

    [Fact]
    public async Task A_subscription_from_a_time_starts_at_the_first_message_stamped_at_or_after_it()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 6, 1, 12, 0, 0, TimeSpan.Zero));
        await using var server = await TestServer.StartAsync(time: time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("timed", Retained);
        var stamps = new List<DateTimeOffset>();
        for (var i = 0; i < 10; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            stamps.Add(time.GetUtcNow());
            await client.PublishAsync("timed", $"m{i}");
        }

        await using var reader = new MessageReader(await client.SubscribeAsync("timed",
            new SubscribeOptions { From = StartPosition.Time(stamps[5].AddMilliseconds(-500)), Prefetch = 10, AutoCommit = true }));

        reader.Subscription.StartSequence.ShouldBe(6);
        var first = await reader.NextAsync();
        first.PayloadText.ShouldBe("m5");
        first.Timestamp.ShouldBe(stamps[5]);
    }

    [Fact]
    public async Task A_sequence_before_the_oldest_retained_message_starts_at_the_oldest_one()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(time: time);
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("expiring", new TopicOptions { RetentionTtl = TimeSpan.FromSeconds(10) });
        for (var i = 1; i <= 5; i++)
        {
            await client.PublishAsync("expiring", $"old{i}");
        }

        time.Advance(TimeSpan.FromSeconds(6));
        await client.PublishAsync("expiring", "young");
        time.Advance(TimeSpan.FromSeconds(5));
        await server.Maintenance.SweepAllAsync(CancellationToken.None);

        await using var reader = new MessageReader(await client.SubscribeAsync("expiring", new SubscribeOptions { From = StartPosition.Sequence(2) }));

        reader.Subscription.StartSequence.ShouldBe(6);
        (await reader.NextAsync()).PayloadText.ShouldBe("young");
    }

    [Theory]
    [InlineData(StartPositionKind.Sequence, 0)]
    [InlineData(StartPositionKind.Time, -1)]
    public async Task A_start_position_out_of_range_is_refused_with_InvalidArgument(StartPositionKind kind, long value)
    {
        await using var server = await TestServer.StartAsync();
        await using var raw = await RawConnection.ConnectAsync(server.Port);

        await raw.SendAsync(output =>
        {
            FrameWriter.Write(output, new SubscribeFrame(9, "bad-start", StartPosition.Latest, 1));
        });
        (await raw.ReceiveAsync()).Ack.ShouldNotBeNull("a Latest subscription is fine");
        var frame = new System.Buffers.ArrayBufferWriter<byte>();
        FrameWriter.Write(frame, new SubscribeFrame(10, "bad-start-2", StartPosition.Latest, 1));
        var bytes = frame.WrittenSpan.ToArray();
        const int fromAt = 4 + 1 + 8 + 2 + 11;
        bytes[fromAt] = (byte)kind;
        BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(fromAt + 1), value);
        await raw.SendBytesAsync(bytes);

        var (_, error, _) = await raw.ReceiveAsync();
        error.ShouldNotBeNull().Code.ShouldBe(ErrorCode.InvalidArgument);
        error.Value.RequestId.ShouldBe(10UL);
    }
}
