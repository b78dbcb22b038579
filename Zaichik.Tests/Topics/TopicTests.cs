using Zaichik.Protocol;
using Zaichik.Server.Topics;

namespace Zaichik.Tests.Topics;

public sealed class TopicTests
{
    [Fact]
    public async Task Offsets_increase_in_publish_order()
    {
        await using var context = TopicTestContext.Create();

        var offsets = new List<long>();
        for (var i = 0; i < 100; i++)
        {
            offsets.Add((await context.PublishAsync($"m{i}")).Offset);
        }

        offsets.ShouldBe(offsets.Order().ToList());
        offsets.Distinct().Count().ShouldBe(100);
        (await context.ReadAllAsync(0)).Select(r => r.Payload).ShouldBe(Enumerable.Range(0, 100).Select(i => $"m{i}"));
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

        var offsets = (await Task.WhenAll(publishes)).Select(o => o.Offset).ToList();
        var stored = await context.ReadAllAsync(0);

        offsets.ShouldBe(offsets.Order().ToList());
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

        (await context.ReadAllAsync(0)).Count.ShouldBe(10);
    }

    [Fact]
    public async Task Keyed_duplicate_inside_the_window_is_not_stored_and_reports_the_original_offset()
    {
        await using var context = TopicTestContext.Create(compactionWindowMs: 10_000);
        var first = await context.PublishAsync("v1", key: "k");

        context.Time.Advance(TimeSpan.FromMilliseconds(9_999));
        var second = await context.PublishAsync("v2", key: "k");

        second.Duplicate.ShouldBeTrue();
        second.Offset.ShouldBe(first.Offset);
        (await context.ReadAllAsync(0)).Select(r => r.Payload).ShouldBe(["v1"]);
    }

    [Fact]
    public async Task Keyed_message_after_the_window_is_stored()
    {
        await using var context = TopicTestContext.Create(compactionWindowMs: 10_000);
        await context.PublishAsync("v1", key: "k");

        context.Time.Advance(TimeSpan.FromSeconds(10));
        var later = await context.PublishAsync("v2", key: "k");

        later.Duplicate.ShouldBeFalse();
        (await context.ReadAllAsync(0)).Select(r => r.Payload).ShouldBe(["v1", "v2"]);
    }

    [Fact]
    public async Task Without_compaction_keyed_repeats_are_all_stored()
    {
        await using var context = TopicTestContext.Create();

        for (var i = 0; i < 5; i++)
        {
            (await context.PublishAsync($"v{i}", key: "k")).Duplicate.ShouldBeFalse();
        }

        (await context.ReadAllAsync(0)).Count.ShouldBe(5);
    }

    [Fact]
    public async Task Sweep_forgets_stale_keys_so_memory_is_bounded_by_the_window()
    {
        await using var context = TopicTestContext.Create(compactionWindowMs: 1_000);
        for (var i = 0; i < 500; i++)
        {
            await context.PublishAsync("v", key: $"k{i}");
        }

        context.Topic.CompactionKeyCount.ShouldBe(500);
        context.Time.Advance(TimeSpan.FromSeconds(1));
        await context.Topic.SweepAsync(CancellationToken.None);

        context.Topic.CompactionKeyCount.ShouldBe(0);
    }

    [Fact]
    public async Task Timestamps_never_go_backwards_when_the_clock_does()
    {
        var clock = new SettableClock(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));
        await using var context = TopicTestContext.Create(time: clock);
        await context.PublishAsync("a");
        clock.Now = clock.Now.AddMinutes(-5);

        await context.PublishAsync("b");

        var records = await context.ReadAllAsync(0);
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
    public async Task Retained_subscription_starts_at_the_oldest_record_and_latest_at_the_tail()
    {
        await using var context = TopicTestContext.Create(retentionTtlMs: 60_000);
        var first = await context.PublishAsync("a");
        await context.PublishAsync("b");

        context.Topic.StartAddress(StartPosition.Retained).ShouldBe(first.Offset);
        context.Topic.StartAddress(StartPosition.Latest).ShouldBe(context.Topic.Log.TailAddress);
    }

    [Fact]
    public async Task Without_retention_a_retained_subscription_starts_at_the_tail()
    {
        await using var context = TopicTestContext.Create();
        await context.PublishAsync("a");

        context.Topic.StartAddress(StartPosition.Retained).ShouldBe(context.Topic.Log.TailAddress);
    }

    [Fact]
    public async Task Sweep_truncates_expired_records_from_the_log()
    {
        await using var context = TopicTestContext.Create(retentionTtlMs: 1_000);
        await context.PublishAsync("old-1");
        await context.PublishAsync("old-2");
        context.Time.Advance(TimeSpan.FromMilliseconds(500));
        var young = await context.PublishAsync("young");
        context.Time.Advance(TimeSpan.FromMilliseconds(500));

        var begin = await context.Topic.SweepAsync(CancellationToken.None);

        begin.ShouldBe(young.Offset);
        context.Topic.Log.BeginAddress.ShouldBe(young.Offset);
        (await context.ReadAllAsync(0)).Select(r => r.Payload).ShouldBe(["young"]);
    }

    [Fact]
    public async Task Sweep_never_truncates_past_a_reader()
    {
        await using var context = TopicTestContext.Create(retentionTtlMs: 1_000);
        var first = await context.PublishAsync("a");
        await context.PublishAsync("b");
        var cursor = context.Topic.OpenCursor(first.Offset);
        context.Time.Advance(TimeSpan.FromSeconds(5));

        (await context.Topic.SweepAsync(CancellationToken.None)).ShouldBe(first.Offset);

        context.Topic.CloseCursor(cursor);
        (await context.Topic.SweepAsync(CancellationToken.None)).ShouldBe(context.Topic.Log.TailAddress);
    }

    [Fact]
    public async Task Without_retention_sweep_drops_everything_no_reader_still_needs()
    {
        await using var context = TopicTestContext.Create();
        await context.PublishAsync("a");
        await context.PublishAsync("b");

        (await context.Topic.SweepAsync(CancellationToken.None)).ShouldBe(context.Topic.Log.TailAddress);
    }
}
