using System.Buffers;
using System.Buffers.Binary;
using Zaichik.Protocol;
using Zaichik.Server.Topics;
using Zaichik.Server.Storage;

namespace Zaichik.Tests.Topics;

public sealed class TopicTests
{
    [Fact]
    public async Task Sequences_are_one_two_three_in_publish_order()
    {
        await using var context = TopicTestContext.Create();

        var sequences = new List<long>();
        for (var i = 0; i < 100; i++)
        {
            sequences.Add((await context.PublishAsync($"m{i}")).Sequence);
        }

        sequences.ShouldBe(Enumerable.Range(1, 100).Select(i => (long)i));
        (await context.ReadAllAsync()).Select(r => r.Payload).ShouldBe(Enumerable.Range(0, 100).Select(i => $"m{i}"));
    }

    [Fact]
    public async Task Publishes_that_find_the_in_memory_log_full_wait_for_room_and_lose_nothing()
    {
        // Two 4 KiB pages of memory fill after a few dozen 500-byte records, forcing the wait-for-flush path.
        await using var context = TopicTestContext.Create(storage: new() { PageSizeBits = 12, MemorySizeBits = 13, SegmentSizeBits = 20 });
        var payload = new string('p', 500);

        var publishes = new List<Task<PublishOutcome>>();
        for (var i = 0; i < 2_000; i++)
        {
            publishes.Add(context.PublishAsync($"{i:D5}{payload}"));
        }

        var sequences = (await Task.WhenAll(publishes)).Select(o => o.Sequence).ToList();
        var stored = await context.ReadAllAsync();

        sequences.ShouldBe(Enumerable.Range(1, 2_000).Select(i => (long)i));
        stored.Select(r => int.Parse(r.Payload[..5])).ShouldBe(Enumerable.Range(0, 2_000));
    }

    [Fact]
    public async Task Unkeyed_messages_are_never_dropped_even_with_a_compaction_window()
    {
        await using var context = TopicTestContext.Create(compactionWindowMs: 10_000);

        for (var i = 0; i < 10; i++)
        {
            (await context.PublishAsync("same")).Duplicate.ShouldBeFalse();
        }

        (await context.ReadAllAsync()).Count.ShouldBe(10);
    }

    [Fact]
    public async Task Keyed_duplicate_inside_the_window_is_not_stored_and_reports_the_original_sequence()
    {
        await using var context = TopicTestContext.Create(compactionWindowMs: 10_000);
        var first = await context.PublishAsync("v1", key: "k");

        context.Time.Advance(TimeSpan.FromMilliseconds(9_999));
        var second = await context.PublishAsync("v2", key: "k");

        second.Duplicate.ShouldBeTrue();
        second.Sequence.ShouldBe(first.Sequence);
        (await context.ReadAllAsync()).Select(r => r.Payload).ShouldBe(["v1"]);
    }

    [Fact]
    public async Task Keyed_message_after_the_window_is_stored()
    {
        await using var context = TopicTestContext.Create(compactionWindowMs: 10_000);
        await context.PublishAsync("v1", key: "k");

        context.Time.Advance(TimeSpan.FromSeconds(10));
        var later = await context.PublishAsync("v2", key: "k");

        later.Duplicate.ShouldBeFalse();
        (await context.ReadAllAsync()).Select(r => r.Payload).ShouldBe(["v1", "v2"]);
    }

    [Fact]
    public async Task Without_compaction_keyed_repeats_are_all_stored()
    {
        await using var context = TopicTestContext.Create();

        for (var i = 0; i < 5; i++)
        {
            (await context.PublishAsync($"v{i}", key: "k")).Duplicate.ShouldBeFalse();
        }

        (await context.ReadAllAsync()).Count.ShouldBe(5);
    }

    [Fact]
    public async Task Sweep_forgets_stale_keys_so_memory_is_bounded_by_the_window()
    {
        await using var context = TopicTestContext.Create(compactionWindowMs: 1_000);
        for (var i = 0; i < 500; i++)
        {
            await context.PublishAsync("v", key: $"k{i}");
        }

        context.Topic.Current!.Keys!.Count.ShouldBe(500);
        context.Time.Advance(TimeSpan.FromSeconds(1));
        await context.Topic.SweepAsync(CancellationToken.None);

        context.Topic.Current!.Keys!.Count.ShouldBe(0);
    }

    [Fact]
    public async Task Timestamps_never_go_backwards_when_the_clock_does()
    {
        var clock = new SettableClock(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));
        await using var context = TopicTestContext.Create(time: clock);
        await context.PublishAsync("a");
        clock.Now = clock.Now.AddMinutes(-5);

        await context.PublishAsync("b");

        var records = await context.ReadAllAsync();
        records[1].TimestampMs.ShouldBe(records[0].TimestampMs);
    }

    /// <summary>A wall clock that can be stepped backwards, which <c>FakeTimeProvider</c> refuses to do.</summary>
    private sealed class SettableClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }

    [Fact]
    public async Task Message_expires_exactly_when_its_ttl_has_passed()
    {
        await using var context = TopicTestContext.Create(retentionTtlMs: 1_000);
        var now = context.Topic.NowMs;

        context.Topic.IsExpired(now, now + 999).ShouldBeFalse();
        context.Topic.IsExpired(now, now + 1_000).ShouldBeTrue();
    }

    [Fact]
    public async Task Without_retention_nothing_expires()
    {
        await using var context = TopicTestContext.Create();

        context.Topic.IsExpired(0, long.MaxValue / 2).ShouldBeFalse();
    }

    [Fact]
    public async Task Retained_subscription_starts_at_the_oldest_message_and_latest_at_the_next_sequence()
    {
        await using var context = TopicTestContext.Create(retentionTtlMs: 60_000);
        var first = await context.PublishAsync("a");
        await context.PublishAsync("b");

        var retained = await context.Topic.SubscribeAsync(StartPosition.Retained, null, CancellationToken.None);
        var latest = await context.Topic.SubscribeAsync(StartPosition.Latest, null, CancellationToken.None);

        retained.StartSequence.ShouldBe(first.Sequence);
        latest.StartSequence.ShouldBe(3);
        retained.Reader.TryRead(out var message).ShouldBeTrue();
        message.Sequence.ShouldBe(first.Sequence);
        retained.Reader.Release();
        latest.Reader.TryRead(out _).ShouldBeFalse();
        Unsubscribe(context, retained);
        Unsubscribe(context, latest);
    }

    [Fact]
    public async Task Without_retention_a_retained_subscription_starts_with_the_next_message()
    {
        await using var context = TopicTestContext.Create();
        await context.PublishAsync("a");

        var start = await context.Topic.SubscribeAsync(StartPosition.Retained, null, CancellationToken.None);

        start.StartSequence.ShouldBe(2);
        start.Reader.TryRead(out _).ShouldBeFalse();
        Unsubscribe(context, start);
    }

    [Fact]
    public async Task Without_retention_a_past_sequence_or_time_starts_with_the_next_message_and_a_future_one_waits_for_it()
    {
        await using var context = TopicTestContext.Create();
        await context.PublishAsync("a");
        await context.PublishAsync("b");

        var pastSequence = await context.Topic.SubscribeAsync(StartPosition.Sequence(1), null, CancellationToken.None);
        var pastTime = await context.Topic.SubscribeAsync(StartPosition.Time(0), null, CancellationToken.None);
        var futureSequence = await context.Topic.SubscribeAsync(StartPosition.Sequence(4), null, CancellationToken.None);
        var futureTime = await context.Topic.SubscribeAsync(StartPosition.Time(context.Topic.NowMs + 5_000), null, CancellationToken.None);

        pastSequence.StartSequence.ShouldBe(3, "messages 1 and 2 are stored but not retained for a new subscriber");
        pastTime.StartSequence.ShouldBe(3);
        futureSequence.StartSequence.ShouldBe(4);
        pastSequence.Reader.TryRead(out _).ShouldBeFalse();
        pastTime.Reader.TryRead(out _).ShouldBeFalse();

        await context.PublishAsync("c");
        await context.PublishAsync("d");
        context.Time.Advance(TimeSpan.FromSeconds(6));
        await context.PublishAsync("e");

        ReadAll(pastSequence).ShouldBe([3L, 4L, 5L]);
        ReadAll(pastTime).ShouldBe([3L, 4L, 5L]);
        ReadAll(futureSequence).ShouldBe([4L, 5L], "a start past the last sequence waits for it");
        ReadAll(futureTime).ShouldBe([5L], "only message 5 was accepted at or after the requested time");
        foreach (var start in new[] { pastSequence, pastTime, futureSequence, futureTime })
        {
            Unsubscribe(context, start);
        }

        static List<long> ReadAll(SubscriptionStart start)
        {
            var sequences = new List<long>();
            while (start.Reader.TryRead(out var message))
            {
                sequences.Add(message.Sequence);
                start.Reader.Release();
            }

            return sequences;
        }
    }

    [Fact]
    public async Task A_subscription_at_a_sequence_or_a_time_starts_at_the_first_message_at_or_after_it()
    {
        await using var context = TopicTestContext.Create(retentionTtlMs: 3_600_000);
        for (var i = 0; i < 50; i++)
        {
            context.Time.Advance(TimeSpan.FromSeconds(1));
            await context.PublishAsync($"m{i}");
        }

        var bySequence = await context.Topic.SubscribeAsync(StartPosition.Sequence(20), null, CancellationToken.None);
        var byTime = await context.Topic.SubscribeAsync(StartPosition.Time(context.Topic.NowMs - 10_500), null, CancellationToken.None);

        bySequence.StartSequence.ShouldBe(20);
        bySequence.Reader.TryRead(out var twentieth).ShouldBeTrue();
        twentieth.Sequence.ShouldBe(20);
        bySequence.Reader.Release();
        byTime.StartSequence.ShouldBe(40, "message n was stamped n seconds in; 10.5 s before the 50th is 39.5 s in");
        byTime.Reader.TryRead(out var recent).ShouldBeTrue();
        recent.Sequence.ShouldBe(40);
        byTime.Reader.Release();
        Unsubscribe(context, bySequence);
        Unsubscribe(context, byTime);
    }

    [Theory]
    [InlineData(StartPositionKind.Sequence, 0)]
    [InlineData(StartPositionKind.Sequence, -5)]
    [InlineData(StartPositionKind.Time, -1)]
    public async Task Start_positions_out_of_range_are_refused(StartPositionKind kind, long value)
    {
        await using var context = TopicTestContext.Create();

        var error = await Should.ThrowAsync<TopicException>(async () => await context.Topic.SubscribeAsync(Decoded(kind, value), null, CancellationToken.None));

        error.Code.ShouldBe(ErrorCode.InvalidArgument);
    }

    [Fact]
    public async Task Sweep_truncates_expired_messages_from_the_log()
    {
        await using var context = TopicTestContext.Create(retentionTtlMs: 1_000);
        await context.PublishAsync("old-1");
        await context.PublishAsync("old-2");
        context.Time.Advance(TimeSpan.FromMilliseconds(500));
        var young = await context.PublishAsync("young");
        context.Time.Advance(TimeSpan.FromMilliseconds(500));

        await context.Topic.SweepAsync(CancellationToken.None);

        context.Log.FirstSequence.ShouldBe(young.Sequence);
        (await context.ReadAllAsync()).Select(r => r.Payload).ShouldBe(["young"]);
    }

    [Fact]
    public async Task Sweep_never_truncates_past_a_reader()
    {
        await using var context = TopicTestContext.Create(retentionTtlMs: 1_000);
        await context.PublishAsync("a");
        await context.PublishAsync("b");
        var start = await context.Topic.SubscribeAsync(StartPosition.Retained, null, CancellationToken.None);
        var begin = context.Log.BeginAddress;
        context.Time.Advance(TimeSpan.FromSeconds(5));

        await context.Topic.SweepAsync(CancellationToken.None);
        context.Log.BeginAddress.ShouldBe(begin, "the reader has not moved");

        Unsubscribe(context, start);
        await context.Topic.SweepAsync(CancellationToken.None);
        context.Log.BeginAddress.ShouldBe(context.Log.TailAddress);
    }

    [Fact]
    public async Task Without_retention_sweep_drops_everything_no_reader_still_needs_and_commits_it()
    {
        await using var context = TopicTestContext.Create();
        await context.PublishAsync("a");
        await context.PublishAsync("b");

        await context.Topic.SweepAsync(CancellationToken.None);

        context.Log.BeginAddress.ShouldBe(context.Log.TailAddress);
        context.Log.FirstSequence.ShouldBe(3);

        // The committer may not have started its interval's wait yet when time first moves: keep moving it an interval
        // at a time (never a publish) until the truncation is committed.
        await Zaichik.Tests.EndToEnd.TestServer.EventuallyAsync(
            () =>
            {
                context.Time.Advance(TimeSpan.FromMilliseconds(100));
                return !context.Log.NeedsCommit;
            },
            "the truncation is committed at the next interval, without waiting for another publish");
    }

    [Fact]
    public async Task An_idle_topic_closes_its_log_and_reopens_it_on_the_next_publish()
    {
        await using var context = TopicTestContext.Create(retentionTtlMs: 3_600_000);
        await context.PublishAsync("before");
        context.Time.Advance(TimeSpan.FromSeconds(29));
        (await context.Topic.TryCloseAsync(TimeSpan.FromSeconds(30), CancellationToken.None)).ShouldBeFalse("not idle long enough");

        context.Time.Advance(TimeSpan.FromSeconds(1));
        (await context.Topic.TryCloseAsync(TimeSpan.FromSeconds(30), CancellationToken.None)).ShouldBeTrue();
        context.Topic.State.ShouldBe(TopicState.Closed);
        context.Context.Files.InUse.ShouldBe(0, "a closed topic holds no descriptor");
        context.Context.OpenTopics.Open.ShouldBe(0);

        var after = await context.PublishAsync("after");

        after.Sequence.ShouldBe(2);
        context.Topic.State.ShouldBe(TopicState.Open);
        (await context.ReadAllAsync()).Select(r => r.Payload).ShouldBe(["before", "after"]);
    }

    [Fact]
    public async Task A_topic_read_by_someone_is_never_closed_for_idleness()
    {
        await using var context = TopicTestContext.Create(retentionTtlMs: 3_600_000);
        var start = await context.Topic.SubscribeAsync(StartPosition.Latest, null, CancellationToken.None);
        context.Time.Advance(TimeSpan.FromHours(1));

        (await context.Topic.TryCloseAsync(TimeSpan.FromSeconds(30), CancellationToken.None)).ShouldBeFalse();

        Unsubscribe(context, start);
        (await context.Topic.TryCloseAsync(TimeSpan.Zero, CancellationToken.None)).ShouldBeTrue();
    }

    [Fact]
    public async Task A_duplicate_reports_the_durability_of_the_original()
    {
        await using var context = TopicTestContext.Create(compactionWindowMs: 60_000);
        var original = await context.PublishAsync("v1", key: "k");
        Topic.IsDurable(original).ShouldBeFalse("not committed yet");

        await context.Log.CommitAsync(CancellationToken.None);
        var duplicate = await context.PublishAsync("v2", key: "k");

        duplicate.Duplicate.ShouldBeTrue();
        Topic.IsDurable(duplicate).ShouldBeTrue("the original is on disk, whatever the log's tail holds");
        await context.PublishAsync("unkeyed");
        Topic.IsDurable(duplicate).ShouldBeTrue();
    }

    private static void Unsubscribe(TopicTestContext context, SubscriptionStart start)
    {
        start.Reader.Dispose();
        context.Topic.Unsubscribed(start.Storage, start.Cursor, null);
    }

    /// <summary>A start position as the codec decodes it from a peer: it carries any value, and the topic is what refuses it.</summary>
    private static StartPosition Decoded(StartPositionKind kind, long value)
    {
        var buffer = new ArrayBufferWriter<byte>();
        FrameWriter.Write(buffer, new SubscribeFrame(0, "t", StartPosition.Latest, 1));
        var bytes = buffer.WrittenSpan.ToArray();
        const int fromAt = 4 + 1 + 8 + 2 + 1;
        bytes[fromAt] = (byte)kind;
        BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(fromAt + 1), value);
        var frames = new FrameReader(1 << 20);
        var input = new ReadOnlySequence<byte>(bytes);
        frames.TryRead(ref input, out var raw).ShouldBeTrue();
        return frames.ReadSubscribe(raw).From;
    }

    [Fact]
    public async Task An_idempotent_repeat_is_answered_with_the_original_before_the_compaction_window_can_call_it_a_duplicate()
    {
        await using var context = TopicTestContext.Create(compactionWindowMs: 60_000);
        var original = await context.PublishAsync("v1", key: "k", producer: new ProducerStamp(9, 1));

        var repeat = await context.PublishAsync("v1", key: "k", producer: new ProducerStamp(9, 1));
        var sameKey = await context.PublishAsync("v2", key: "k", producer: new ProducerStamp(9, 2));

        repeat.Sequence.ShouldBe(original.Sequence);
        repeat.Duplicate.ShouldBeFalse("the idempotence check comes first: a repeat is the original, not a duplicate");
        sameKey.Duplicate.ShouldBeTrue("a new publish with a key inside the window is still a compaction duplicate");
        (await context.ReadAllAsync()).Count.ShouldBe(1);
    }

    [Fact]
    public async Task The_producer_window_is_rebuilt_when_the_topic_reopens_and_only_from_the_last_window()
    {
        // Retained, so the log still holds both originals when the topic reopens.
        await using var context = TopicTestContext.Create(retentionTtlMs: 3_600_000, producers: new ProducerWindowOptions(TimeSpan.FromMinutes(2), 100, 10));
        var old = await context.PublishAsync("old", producer: new ProducerStamp(5, 1));
        context.Time.Advance(TimeSpan.FromMinutes(1));
        var recent = await context.PublishAsync("recent", producer: new ProducerStamp(5, 2));
        (await context.Topic.TryCloseAsync(TimeSpan.Zero, CancellationToken.None)).ShouldBeTrue();
        context.Time.Advance(TimeSpan.FromMinutes(1));

        var repeatOfRecent = await context.PublishAsync("recent", producer: new ProducerStamp(5, 2));
        var repeatOfOld = await context.PublishAsync("old", producer: new ProducerStamp(5, 1));

        repeatOfRecent.Sequence.ShouldBe(recent.Sequence, "accepted a minute ago: rebuilt from the log on reopen");
        repeatOfOld.Sequence.ShouldBeGreaterThan(old.Sequence, "accepted two minutes ago: past the window, stored again");
        context.Topic.Current!.Producers.CountOf(5).ShouldBe(2);
    }

    [Fact]
    public async Task Headers_and_producer_are_stored_with_a_message_split_over_several_pages()
    {
        var storage = new StorageOptions { PageSizeBits = 12, MemorySizeBits = 13, SegmentSizeBits = 16 };
        await using var context = TopicTestContext.Create(storage: storage);
        var headers = Enumerable.Range(0, 9_000).Select(i => (byte)i).ToArray();

        var stored = await context.PublishAsync(new string('p', 10_000), key: "k", producer: new ProducerStamp(3, 4), headers: headers);

        using var reader = context.Log.OpenReaderAtBegin();
        reader.TryRead(out var message).ShouldBeTrue();
        message.Sequence.ShouldBe(stored.Sequence);
        message.Headers.ToArray().ShouldBe(headers);
        message.Payload.Length.ShouldBe(10_000);
        message.Producer.ShouldBe(new ProducerStamp(3, 4));
        reader.Release();
    }
}
