using Zaichik.Protocol;
using Zaichik.Server.Storage;
using Zaichik.Server.Topics;

namespace Zaichik.Tests.Topics;

/// <summary>
/// A key window or an idempotent producer's window that outlives the message it remembers: what the log lets go while
/// the window runs is remembered across a restart through the topic's window file, exactly as a broker that never
/// stopped remembers it.
/// </summary>
public sealed class TopicWindowTests
{
    private static string WindowFilePath(TopicTestContext context) => Path.Combine(context.Directory, WindowFile.FileName);

    [Fact]
    public async Task A_key_whose_message_outlived_its_retention_is_still_a_duplicate_after_a_restart()
    {
        await using var context = TopicTestContext.Create(retentionTtlMs: 1_000, compactionWindowMs: 3_600_000);
        var original = await context.PublishAsync("first", key: "a");
        await context.PublishAsync("other", key: "b");
        context.Time.Advance(TimeSpan.FromSeconds(2));
        await context.Topic.SweepAsync(CancellationToken.None);
        context.Log.FirstSequence.ShouldBe(3, "both messages expired and were removed");

        await context.RestartAsync();
        context.Time.Advance(TimeSpan.FromMinutes(30));
        var repeat = await context.PublishAsync("again", key: "a");

        repeat.Duplicate.ShouldBeTrue("key 'a' was accepted 30 minutes ago, inside its hour");
        repeat.Sequence.ShouldBe(original.Sequence);
        (await context.PublishAsync("new", key: "c")).Duplicate.ShouldBeFalse();
    }

    [Fact]
    public async Task A_key_whose_message_a_count_limit_removed_is_still_a_duplicate_after_a_restart_and_only_inside_its_window()
    {
        await using var context = TopicTestContext.Create(retentionTtlMs: 3_600_000, compactionWindowMs: 60_000, maxMessages: 2);
        var a = await context.PublishAsync("a", key: "a");
        context.Time.Advance(TimeSpan.FromSeconds(10));
        await context.PublishAsync("b", key: "b");
        await context.PublishAsync("c", key: "c");
        await context.PublishAsync("d", key: "d");
        await context.Topic.SweepAsync(CancellationToken.None);
        (await context.ReadAllAsync()).Select(m => m.Key).ShouldBe(["c", "d"], "the limit keeps the newest two");
        File.Exists(WindowFilePath(context)).ShouldBeTrue();

        await context.RestartAsync();
        var repeatA = await context.PublishAsync("a2", key: "a");
        var repeatB = await context.PublishAsync("b2", key: "b");
        repeatA.ShouldSatisfyAllConditions(
            () => repeatA.Duplicate.ShouldBeTrue(),
            () => repeatA.Sequence.ShouldBe(a.Sequence));
        repeatB.Duplicate.ShouldBeTrue();

        // Past 'a''s minute (accepted 10 s before 'b'), inside 'b''s: a restart now forgets 'a' and keeps 'b'.
        context.Time.Advance(TimeSpan.FromSeconds(55));
        await context.RestartAsync();
        (await context.PublishAsync("a3", key: "a")).Duplicate.ShouldBeFalse("a's window has passed");
        (await context.PublishAsync("b3", key: "b")).Duplicate.ShouldBeTrue("b's has not");
    }

    [Fact]
    public async Task A_topic_without_retention_closed_for_idleness_still_knows_its_keys_when_it_reopens()
    {
        await using var context = TopicTestContext.Create(compactionWindowMs: 3_600_000);
        var original = await context.PublishAsync("first", key: "a");
        (await context.Topic.TryCloseAsync(TimeSpan.Zero, CancellationToken.None)).ShouldBeTrue();

        var repeat = await context.PublishAsync("again", key: "a");

        context.Log.FirstSequence.ShouldBe(2, "closing removed what nobody reads");
        repeat.Duplicate.ShouldBeTrue();
        repeat.Sequence.ShouldBe(original.Sequence);
    }

    [Fact]
    public async Task An_idempotent_repeat_of_a_publish_the_log_let_go_is_answered_with_the_original_after_a_restart()
    {
        await using var context = TopicTestContext.Create(retentionTtlMs: 1_000, producers: new ProducerWindowOptions(TimeSpan.FromMinutes(2), 100, 10));
        var original = await context.PublishAsync("once", producer: new ProducerStamp(7, 1));
        context.Time.Advance(TimeSpan.FromSeconds(5));
        await context.Topic.SweepAsync(CancellationToken.None);
        context.Log.FirstSequence.ShouldBe(2);

        await context.RestartAsync();
        var repeat = await context.PublishAsync("once", producer: new ProducerStamp(7, 1));

        repeat.Sequence.ShouldBe(original.Sequence, "the publish was stored 5 s ago, inside the producers' two minutes");
        (await context.ReadAllAsync()).ShouldBeEmpty("nothing was stored twice");
    }

    [Fact]
    public async Task A_resend_of_a_value_compaction_removed_is_answered_with_the_original_after_a_restart_and_does_not_bring_the_old_value_back()
    {
        await using var context = TopicTestContext.Create(durability: Durability.Always, keepLatestPerKey: true, producers: new ProducerWindowOptions(TimeSpan.FromMinutes(2), 100, 10));
        var old = await context.PublishAsync("v1", key: "k", producer: new ProducerStamp(7, 1));
        var newer = await context.PublishAsync("v2", key: "k", producer: new ProducerStamp(7, 2));
        await Zaichik.Tests.EndToEnd.TestServer.EventuallyAsync(() => context.Log.DurableSequence >= newer.Sequence, "both are on disk (a pass compacts only those)");
        await context.Topic.SweepAsync(CancellationToken.None);
        context.Topic.Counters.Compacted.ShouldBe(1, "v1 was superseded and compacted away");

        await context.RestartAsync();
        var resend = await context.PublishAsync("v1", key: "k", producer: new ProducerStamp(7, 1));

        resend.Sequence.ShouldBe(old.Sequence, "the resend is the publish stored a moment ago");
        await context.Topic.SweepAsync(CancellationToken.None);
        (await context.ReadAllAsync()).Select(message => message.Payload).ShouldBe(["v2"], "the newest value stays the newest");
    }

    [Fact]
    public async Task Expired_entries_leave_the_window_file_and_a_file_with_none_left_is_deleted()
    {
        await using var context = TopicTestContext.Create(retentionTtlMs: 1_000, compactionWindowMs: 60_000);
        await context.PublishAsync("a", key: "a");
        context.Time.Advance(TimeSpan.FromSeconds(2));
        await context.Topic.SweepAsync(CancellationToken.None);
        File.Exists(WindowFilePath(context)).ShouldBeTrue();

        context.Time.Advance(TimeSpan.FromMinutes(1));
        await context.RestartAsync();
        (await context.PublishAsync("a again", key: "a")).Duplicate.ShouldBeFalse("its minute has passed");

        File.Exists(WindowFilePath(context)).ShouldBeFalse("nothing in it was still inside a window");
    }

    [Fact]
    public async Task Nothing_is_written_when_the_retention_outlasts_every_window()
    {
        await using var context = TopicTestContext.Create(retentionTtlMs: 120_000, compactionWindowMs: 60_000);
        await context.PublishAsync("a", key: "a");
        context.Time.Advance(TimeSpan.FromMinutes(3));
        await context.Topic.SweepAsync(CancellationToken.None);

        context.Log.FirstSequence.ShouldBe(2);
        File.Exists(WindowFilePath(context)).ShouldBeFalse();
    }

    [Fact]
    public async Task A_damaged_block_of_the_window_file_costs_only_its_own_keys()
    {
        await using var context = TopicTestContext.Create(retentionTtlMs: 1_000, compactionWindowMs: 3_600_000);
        foreach (var key in new[] { "a", "b", "c" })
        {
            // One sweep, one block.
            await context.PublishAsync(key, key: key);
            context.Time.Advance(TimeSpan.FromSeconds(2));
            await context.Topic.SweepAsync(CancellationToken.None);
        }

        await context.Topic.DisposeAsync();
        var bytes = await File.ReadAllBytesAsync(WindowFilePath(context));
        var blockLength = bytes.Length / 3;
        bytes[blockLength + (blockLength / 2)] ^= 0x5A;
        await File.WriteAllBytesAsync(WindowFilePath(context), bytes);

        await context.RestartAsync();

        (await context.PublishAsync("a2", key: "a")).Duplicate.ShouldBeTrue("block 1 is whole");
        (await context.PublishAsync("b2", key: "b")).Duplicate.ShouldBeFalse("block 2 was damaged");
        (await context.PublishAsync("c2", key: "c")).Duplicate.ShouldBeTrue("block 3 is whole");
    }

    [Fact]
    public async Task The_window_file_is_rewritten_when_it_has_doubled_so_it_stays_bounded_by_what_the_windows_hold()
    {
        await using var context = TopicTestContext.Create(retentionTtlMs: 1_000, compactionWindowMs: 10_000);
        var payloadKey = new string('k', 2_000);
        long largest = 0;
        for (var round = 0; round < 100; round++)
        {
            for (var i = 0; i < 20; i++)
            {
                await context.PublishAsync("x", key: $"{payloadKey}-{round}-{i}");
            }

            context.Time.Advance(TimeSpan.FromSeconds(2));
            await context.Topic.SweepAsync(CancellationToken.None);
            largest = Math.Max(largest, new FileInfo(WindowFilePath(context)).Length);
        }

        // Each round writes about 40 KB and 5 rounds stay in the window: without rewriting, the file would reach 4 MB;
        // rewritten each time it passes 1 MiB and twice what it held, it stays near that.
        largest.ShouldBeLessThan(WindowFile.MinimumRewriteBytes + 100_000);
        await context.RestartAsync();
        (await context.PublishAsync("x", key: $"{payloadKey}-99-0")).Duplicate.ShouldBeTrue();
        (await context.PublishAsync("x", key: $"{payloadKey}-94-0")).Duplicate.ShouldBeFalse("12 s ago: past the window");
    }
}
