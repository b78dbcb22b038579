using System.Reflection;
using FASTER.core;
using Zaichik.Server.Storage;
using Zaichik.Server.Storage.Internal;

namespace Zaichik.Tests.Storage;

/// <summary>
/// The log seen as sequences: numbering, recovery after a crash, seeking, and what every kind of damage to its files
/// costs. Each damage test closes the log cleanly, damages its files, reopens it and reads it all: every message not
/// in the damaged range must come back exactly once and in order, and the damaged range must be reported as a hole.
/// </summary>
public sealed class TopicLogTests
{
    private const int PageSize = 1 << 12;

    /// <summary>Entries are 128 bytes with these payloads: 32 to a page, 256 to a segment.</summary>
    private const int PayloadSize = 100;

    [Fact]
    public async Task A_log_that_ends_at_a_page_start_reopens_knowing_its_newest_timestamp()
    {
        // Found by TimedModelTests: recovery of a cleanly closed log checks only its last page, and when the log ended
        // exactly where a page starts that page holds nothing. The log then claimed a newest timestamp of 0, and a topic
        // rebuilt no key window from it (a repeat inside the window was stored).
        await using var context = LogTestContext.Create();
        var log = context.Open();
        var pageSize = 1 << context.Options.PageSizeBits;
        await context.AppendAsync(1, size: 100);
        var before = log.TailAddress;
        await context.AppendAsync(1, size: 100);
        var overhead = (int)(log.TailAddress - before) - 100;

        // One message that fills the rest of the page exactly.
        var rest = pageSize - (int)(log.TailAddress % pageSize);
        await context.AppendAsync(1, size: rest - overhead);
        (log.TailAddress % pageSize).ShouldBe(0, $"the log ends at a page start ({log.TailAddress})");
        var newest = log.LastTimestampMs;
        newest.ShouldBeGreaterThan(0);

        await context.CloseAsync();
        context.Open().LastTimestampMs.ShouldBe(newest);
    }

    [Fact]
    public async Task A_log_closed_right_after_a_truncating_commit_removes_the_old_segments_itself_and_refuses_later_truncations()
    {
        // FasterLog removes old segments from a pool thread after a commit; run after the log was disposed, that thread
        // spun forever on the log's reset epoch (TimedModelTests' tight variant left two cores busy after a few idle
        // closes). The log now closes its device to truncations first and removes the segments itself.
        await using var context = LogTestContext.Create();
        var log = context.Open();
        await context.AppendAsync(700, 100);
        await log.CommitAsync(CancellationToken.None);
        SegmentFiles.List(context.Directory).Count.ShouldBeGreaterThanOrEqualTo(3);
        var keep = LogFiles.Entries(context.Directory, context.Options).First(entry => entry.Sequence == 600).Address;
        log.TruncateUntil(keep, 600);
        var device = (IDevice)typeof(TopicLog).GetField("_device", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(log)!;

        await context.CloseAsync();

        var kept = (int)(keep >> context.Options.SegmentSizeBits);
        SegmentFiles.List(context.Directory).ShouldAllBe(segment => segment >= kept, "the segments below the committed begin are gone when the log has closed");
        var before = SegmentFiles.List(context.Directory);
        device.TruncateUntilAddress(keep + (2L << context.Options.SegmentSizeBits));
        SegmentFiles.List(context.Directory).ShouldBe(before, "a truncation arriving after the close does nothing");

        var reopened = context.Open();
        reopened.FirstSequence.ShouldBe(600);
        (await context.ReadAllAsync()).Select(message => message.Sequence).ShouldBe(Enumerable.Range(600, 101).Select(i => (long)i));
    }

    [Fact]
    public async Task Sequences_start_at_one_are_contiguous_and_continue_after_a_clean_reopen()
    {
        await using var context = LogTestContext.Create();
        context.Open();

        var first = await context.AppendAsync(300);
        await context.CloseAsync();
        context.Open();
        var next = await context.AppendAsync(1, prefix: "after");

        first.ShouldBe(Enumerable.Range(1, 300).Select(i => (long)i));
        next.ShouldBe([301L], "a clean reopen continues right after the last sequence");
        var read = await context.ReadAllAsync();
        read.Select(m => m.Sequence).ShouldBe(Enumerable.Range(1, 301).Select(i => (long)i));
        read[^1].Payload.ShouldBe("after0");
        context.Log!.Holes.ShouldBeEmpty();
        context.Logs.Lines.ShouldNotContain(line => line.StartsWith("Warning", StringComparison.Ordinal));
    }

    [Fact]
    public async Task After_a_crash_no_sequence_that_may_have_been_handed_out_is_given_again()
    {
        await using var context = LogTestContext.Create();
        context.Open();
        await context.AppendAsync(10);
        await context.Log!.CommitAsync(CancellationToken.None);
        var handedOut = await context.AppendAsync(5, prefix: "unflushed");

        context.CrashCopy();
        context.Open();
        var recovered = await context.ReadAllAsync();
        var after = (await context.AppendAsync(1, prefix: "after")).Single();

        recovered.Select(m => m.Sequence).ShouldBe(Enumerable.Range(1, recovered.Count).Select(i => (long)i), "what was recovered is a prefix, in order");
        recovered.Count.ShouldBeGreaterThanOrEqualTo(10, "everything committed is there");
        after.ShouldBeGreaterThan(handedOut.Max(), "sequences acknowledged before the crash are never reused");
        context.Log!.Holes.ShouldContain(hole => hole.FirstSequence == recovered.Count + 1 && hole.LastSequence == after - 1);
        context.Logs.Lines.ShouldContain(line => line.Contains("not on disk after an unclean stop", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_new_log_hands_out_its_first_sequences_without_a_commit_and_a_crash_before_one_never_reuses_them()
    {
        await using var context = LogTestContext.Create();
        context.Open();
        var handedOut = await context.AppendAsync(5);
        context.Log!.DurableSequence.ShouldBe(0, "no commit was needed to publish to a new topic");
        new FileInfo(Path.Combine(context.Directory, CommitSlots.FileName)).Length.ShouldBe(2 * CommitSlots.SlotSize);

        context.CrashCopy();
        context.Open();
        var after = (await context.AppendAsync(1, prefix: "after")).Single();

        after.ShouldBeGreaterThan(handedOut.Max());
        context.Logs.Lines.ShouldContain(line => line.Contains($"sequences 1..{after - 1}", StringComparison.Ordinal), "the skipped range is reported");
    }

    [Fact]
    public async Task Records_flushed_after_the_last_commit_survive_a_crash()
    {
        await using var context = LogTestContext.Create();
        context.Open();
        await context.AppendAsync(10);
        await context.Log!.CommitAsync(CancellationToken.None);

        // Two pages of memory: appending 200 more pushes the older pages out to the files, uncommitted.
        await context.AppendAsync(200, prefix: "later");
        context.CrashCopy();
        context.Open();
        var recovered = await context.ReadAllAsync();

        recovered.Count.ShouldBeGreaterThan(100, "records in pages written after the last commit are recovered too");
        recovered.Select(m => m.Sequence).ShouldBe(Enumerable.Range(1, recovered.Count).Select(i => (long)i));
    }

    [Fact]
    public async Task A_commit_flushes_its_record_only_when_recovery_needs_it_and_a_power_cut_that_loses_the_others_loses_no_record()
    {
        await using var context = LogTestContext.Create();
        var log = context.Open();
        await context.AppendAsync(10);
        await log.CommitAsync(CancellationToken.None);
        log.CommitRecordFlushes.ShouldBe(1, "the first commit after opening is flushed");
        var flushed = File.ReadAllBytes(Path.Combine(context.Directory, CommitSlots.FileName));

        var handedOut = new List<long>();
        for (var commit = 0; commit < 3; commit++)
        {
            handedOut.AddRange(await context.AppendAsync(7, prefix: $"c{commit}-"));
            await log.CommitAsync(CancellationToken.None);
        }

        log.DurableSequence.ShouldBe(31);
        log.CommitRecordFlushes.ShouldBe(1, "commits that change nothing recovery needs write their record without flushing it");

        // A power cut that loses every record written since the flushed one: the files hold the pages (flushed before each
        // record) and the flushed commit record.
        context.CrashCopy();
        File.WriteAllBytes(Path.Combine(context.Directory, CommitSlots.FileName), flushed);
        context.Open();
        var recovered = await context.ReadAllAsync();
        var after = (await context.AppendAsync(1, prefix: "after")).Single();

        recovered.Select(m => m.Sequence).ShouldBe(Enumerable.Range(1, 31).Select(i => (long)i), "every durable record is recovered from the last flushed commit on");
        recovered[^1].Payload.ShouldBe("c2-6");
        after.ShouldBeGreaterThan(handedOut.Max());
    }

    [Fact]
    public async Task A_commit_that_raises_the_bound_of_handed_out_sequences_or_moves_the_first_sequence_or_closes_the_log_is_flushed()
    {
        await using var context = LogTestContext.Create();
        var log = context.Open();
        await context.AppendAsync(10);
        await log.CommitAsync(CancellationToken.None);
        log.CommitRecordFlushes.ShouldBe(1);

        // The first commit reserved a block of sequences; using half of it raises the bound in the background, by a commit.
        await context.AppendAsync((int)(2 * SequenceReservation.MinimumBlock) + 100, size: 8);
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20)))
        {
            while (log.CommitRecordFlushes < 2)
            {
                await Task.Delay(10, timeout.Token);
            }
        }

        // The flushed record is the newest on disk now: a power cut from here on leaves this file.
        var flushed = File.ReadAllBytes(Path.Combine(context.Directory, CommitSlots.FileName));
        var handedOut = await context.AppendAsync(5, prefix: "late");
        await log.CommitAsync(CancellationToken.None);
        log.CommitRecordFlushes.ShouldBe(2, "a commit under the same bound is not flushed");

        context.CrashCopy();
        File.WriteAllBytes(Path.Combine(context.Directory, CommitSlots.FileName), flushed);
        var reopened = context.Open();
        (await context.AppendAsync(1, prefix: "after")).Single().ShouldBeGreaterThan(handedOut.Max(), "the raised bound was on disk before sequences past the old one were handed out");
        await reopened.CommitAsync(CancellationToken.None);
        await context.AppendAsync(1, prefix: "more");
        await reopened.CommitAsync(CancellationToken.None);
        reopened.CommitRecordFlushes.ShouldBe(1, "the first commit after opening is flushed, the next one is not");

        reopened.TruncateUntil(reopened.BeginAddress, 5);
        await context.AppendAsync(1, prefix: "later");
        await reopened.CommitAsync(CancellationToken.None);
        reopened.CommitRecordFlushes.ShouldBe(2, "a new first sequence is flushed, so that recovery does not report the messages before it as lost");

        await reopened.DisposeAsync();
        reopened.CommitRecordFlushes.ShouldBe(3, "the clean close is flushed");
    }

    [Fact]
    public async Task A_reader_reads_evicted_pages_from_the_files_and_then_follows_the_tail()
    {
        await using var context = LogTestContext.Create();
        context.Open();
        await context.AppendAsync(1_000);

        using var reader = context.Log!.OpenReaderAtBegin();
        var all = await context.ReadAllAsync(reader);
        var waiting = reader.WaitAsync(CancellationToken.None);
        await context.AppendAsync(5, prefix: "live");
        (await waiting.AsTask().WaitAsync(TimeSpan.FromSeconds(10))).ShouldBeTrue();
        var live = await context.ReadAllAsync(reader);

        all.Select(m => m.Payload).ShouldBe(Enumerable.Range(0, 1_000).Select(i => $"m{i}"));
        live.Select(m => m.Sequence).ShouldBe(Enumerable.Range(1_001, 5).Select(i => (long)i));
    }

    [Fact]
    public async Task Seek_by_sequence_starts_at_that_message_reading_only_a_few_pages()
    {
        await using var context = LogTestContext.Create();
        context.Open();
        await context.AppendAsync(1_000);
        await context.Log!.CommitAsync(CancellationToken.None);

        foreach (var target in new long[] { 1, 2, 33, 500, 999, 1_000 })
        {
            using var reader = await context.Log.OpenReaderAtSequenceAsync(target, CancellationToken.None);
            (context.AddressOf(target) - reader.Position).ShouldBeInRange(0, PageSize, $"a seek to {target} starts within a page before it");
            reader.TryRead(out var message).ShouldBeTrue();
            message.Sequence.ShouldBe(target);
            reader.Release();
        }

        using var future = await context.Log.OpenReaderAtSequenceAsync(1_002, CancellationToken.None);
        await context.AppendAsync(2, prefix: "future");
        (await context.ReadAllAsync(future)).Select(m => m.Sequence).ShouldBe([1_002L], "a sequence past the last waits for it");
    }

    [Fact]
    public async Task Seek_by_time_starts_at_the_first_message_stamped_at_or_after_it()
    {
        await using var context = LogTestContext.Create();
        context.Open();
        var start = context.Time.GetUtcNow().ToUnixTimeMilliseconds();
        await context.AppendAsync(1_000);

        foreach (var offset in new long[] { 0, 1, 250, 999, 1_000 })
        {
            using var reader = await context.Log!.OpenReaderAtTimeAsync(start + offset, CancellationToken.None);
            reader.TryRead(out var message).ShouldBeTrue();
            message.TimestampMs.ShouldBe(Math.Max(start + 1, start + offset), $"the first message at or after {offset} ms");
            reader.Release();
        }
    }

    [Theory]
    [InlineData("checksum")]
    [InlineData("zero length")]
    [InlineData("negative length")]
    [InlineData("huge length")]
    public async Task A_damaged_record_costs_at_most_the_rest_of_its_page_and_is_reported_once(string damage)
    {
        await using var context = LogTestContext.Create();
        context.Open();
        await context.AppendAsync(300, PayloadSize);
        await context.CloseAsync();
        switch (damage)
        {
            case "checksum":
                context.Corrupt(100);
                break;
            case "zero length":
                context.SetLength(100, 0);
                break;
            case "negative length":
                context.SetLength(100, -7);
                break;
            default:
                context.SetLength(100, 1 << 30);
                break;
        }

        context.Open();
        var read = await context.ReadAllAsync();
        var again = await context.ReadAllAsync();

        var missing = AssertOneHole(context, read, 300);
        missing.ShouldContain(100L);
        missing.Count.ShouldBeLessThanOrEqualTo(PageSize / 128, "no more than one page is lost");
        if (damage == "checksum")
        {
            missing.ShouldBe([100L], "a record whose framing is intact costs only itself");
        }

        again.ShouldBe(read, "a second reader reads the same");
        context.Logs.Lines.Count(line => line.Contains("were lost: damaged records", StringComparison.Ordinal)).ShouldBe(1, "reported once");
        (await context.AppendAsync(1, prefix: "after")).ShouldBe([301L], "new messages continue with fresh sequences");
    }

    [Fact]
    public async Task A_zeroed_64_KiB_range_costs_the_pages_it_touches_and_nothing_else()
    {
        await using var context = LogTestContext.Create(new StorageOptions { PageSizeBits = 12, MemorySizeBits = 13, SegmentSizeBits = 18 });
        context.Open();
        await context.AppendAsync(2_000, PayloadSize);
        await context.CloseAsync();
        context.Zero(context.AddressOf(700), 64 * 1024);

        context.Open();
        var read = await context.ReadAllAsync();

        var missing = AssertOneHole(context, read, 2_000);
        missing.Count.ShouldBeLessThanOrEqualTo((64 * 1024 / 128) + (PageSize / 128), "the zeroed bytes and at most the rest of a page");
        missing.ShouldContain(700L);
    }

    [Fact]
    public async Task A_last_segment_truncated_to_half_is_cut_back_to_its_last_valid_record_and_the_intact_segments_are_served()
    {
        await using var context = LogTestContext.Create();
        context.Open();
        await context.AppendAsync(700, PayloadSize);
        await context.CloseAsync();
        var last = SegmentFiles.List(context.Directory).Max();
        TruncateToHalf(context.SegmentPath(last));

        context.Open();
        var read = await context.ReadAllAsync();
        var after = await context.AppendAsync(1, prefix: "after");

        read.Count.ShouldBeGreaterThanOrEqualTo(last * 256, "every intact segment is served");
        read.Select(m => m.Sequence).ShouldBe(Enumerable.Range(1, read.Count).Select(i => (long)i));
        after.ShouldBe([701L], "sequences the cut end had are not given again");
        context.Log!.Holes.ShouldContain(new LogHole(read.Count + 1, 700));
        context.Logs.Lines.ShouldContain(line => line.Contains("the end of the log is missing", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_first_segment_truncated_to_half_loses_only_what_was_cut()
    {
        await using var context = LogTestContext.Create();
        context.Open();
        await context.AppendAsync(700, PayloadSize);
        await context.CloseAsync();
        var lastInFirst = context.Entries().Where(entry => entry.Address >> context.Options.SegmentSizeBits == 0).Max(entry => entry.Sequence);
        TruncateToHalf(context.SegmentPath(0));

        context.Open();
        var read = await context.ReadAllAsync();

        var missing = AssertOneHole(context, read, 700);
        missing.Min().ShouldBeGreaterThan(100, "the first half of the first segment is intact");
        missing.Max().ShouldBe(lastInFirst, "the second segment onwards is intact");
    }

    [Fact]
    public async Task A_deleted_middle_segment_is_a_hole_named_by_its_sequences_and_the_segments_around_it_are_served()
    {
        await using var context = LogTestContext.Create();
        context.Open();
        await context.AppendAsync(900, PayloadSize);
        await context.CloseAsync();
        var inSegment = context.Entries().Where(entry => entry.Address >> context.Options.SegmentSizeBits == 1).Select(entry => entry.Sequence).ToList();
        File.Delete(context.SegmentPath(1));

        context.Open();
        var read = await context.ReadAllAsync();

        var missing = AssertOneHole(context, read, 900);
        missing.ShouldBe(inSegment, "exactly the messages of the deleted segment");
        var range = $"{inSegment[0]}..{inSegment[^1]}";
        context.Logs.Lines.ShouldContain(line => line.Contains("segment file log.1 is missing", StringComparison.Ordinal) && line.Contains(range, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("deleted")]
    [InlineData("zeroed")]
    [InlineData("random")]
    public async Task A_lost_commit_record_is_recovered_by_checking_every_segment_never_by_starting_empty(string damage)
    {
        await using var context = LogTestContext.Create();
        context.Open();
        await context.AppendAsync(700, PayloadSize);
        await context.CloseAsync();
        LogFiles.DamageCommitRecord(context.Directory, damage);

        context.Open();
        var read = await context.ReadAllAsync();
        var after = (await context.AppendAsync(1, prefix: "after")).Single();

        read.Select(m => m.Sequence).ShouldBe(Enumerable.Range(1, 700).Select(i => (long)i), "every message is found by scanning");
        after.ShouldBeGreaterThan(700);
        context.Logs.Lines.ShouldContain(line => line.Contains("commit record is", StringComparison.Ordinal) && line.Contains("checking every record", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("fifo")]
    [InlineData("directory")]
    public async Task A_file_of_the_wrong_kind_in_place_of_a_segment_is_refused_at_once(string kind)
    {
        await using var context = LogTestContext.Create();
        context.Open();
        await context.AppendAsync(300, PayloadSize);
        await context.CloseAsync();
        var segment = context.SegmentPath(1);
        await LogFiles.ReplaceWithWrongKindAsync(segment, kind);

        var error = await Should.ThrowAsync<WrongFileKindException>(Task.Run(() => context.Open()).WaitAsync(TimeSpan.FromSeconds(10)));

        error.Message.ShouldContain(kind == "fifo" ? "a fifo" : "a directory");
        error.Message.ShouldContain("log.1");
    }

    [Fact]
    public async Task A_split_message_missing_its_last_fragment_is_skipped_and_reported_when_the_next_message_is_read()
    {
        await using var context = LogTestContext.Create();
        context.Open();
        await context.AppendAsync(5);
        await context.AppendAsync(1, size: 10_000, prefix: "large");
        await context.CloseAsync();
        var fragments = context.Entries().Where(entry => entry.Sequence == 6).ToList();
        fragments.Count.ShouldBeGreaterThan(1, "the message is split");
        context.Zero(fragments[^1].Address, fragments[^1].Length + 4);

        context.Open();
        await context.AppendAsync(1, prefix: "after");
        var read = await context.ReadAllAsync();

        read.Select(m => m.Sequence).ShouldBe([1L, 2, 3, 4, 5, 7]);
        context.Log!.Holes.ShouldContain(new LogHole(6, 6, context.Log.Holes.Single().FromAddress, context.Log.Holes.Single().ToAddress));
    }

    [Fact]
    public async Task After_a_crash_a_split_message_whose_end_never_reached_the_disk_is_cut_from_the_log()
    {
        await using var context = LogTestContext.Create();
        context.Open();
        await context.AppendAsync(5);
        await context.Log!.CommitAsync(CancellationToken.None);
        await context.AppendAsync(1, size: 10_000, prefix: "large");
        context.CrashCopy();
        var fragments = context.Entries().Where(entry => entry.Sequence == 6).ToList();
        if (fragments.Count == 0)
        {
            // Nothing of it was flushed before the copy: the crash lost it whole, which recovery reports the same way.
            fragments.ShouldBeEmpty();
        }
        else
        {
            context.Zero(fragments[^1].Address, fragments[^1].Length + 4);
        }

        context.Open();
        var read = await context.ReadAllAsync();
        var after = (await context.AppendAsync(1, prefix: "after")).Single();

        read.Select(m => m.Sequence).ShouldBe([1L, 2, 3, 4, 5]);
        after.ShouldBeGreaterThan(6);
        context.Log!.HoleList.Covers(6, after - 1).ShouldBeTrue("the split message and every sequence handed out after it are reported");
        (await context.ReadAllAsync()).Select(m => m.Sequence).ShouldBe([1L, 2, 3, 4, 5, after]);
    }

    [Fact]
    public async Task Messages_larger_than_a_page_are_read_whole_from_memory_and_after_a_reopen_from_the_files()
    {
        await using var context = LogTestContext.Create(new StorageOptions());
        context.Open();
        await context.AppendAsync(1, prefix: "small");
        await context.AppendAsync(1, size: 300_000, prefix: "large");
        await context.AppendAsync(1, prefix: "after");
        await context.AppendAsync(1, size: 300_000, prefix: "last");
        var fromMemory = await context.ReadAllAsync();
        await context.CloseAsync();

        context.Open();
        var fromFiles = await context.ReadAllAsync();

        fromMemory.Select(m => m.Payload).ShouldBe(["small0", "large0", "after0", "last0"]);
        fromFiles.ShouldBe(fromMemory, "the last message ends in the page reloaded into memory, its first fragments are in the files");
    }

    [Fact]
    public async Task Lag_counts_the_messages_stored_after_a_sequence_holes_excluded()
    {
        await using var context = LogTestContext.Create();
        context.Open();
        await context.AppendAsync(300, PayloadSize);
        await context.CloseAsync();
        context.Corrupt(150);
        context.Open();
        await context.ReadAllAsync();

        context.Log!.CountAfter(0).ShouldBe(299);
        context.Log.CountAfter(100).ShouldBe(199);
        context.Log.CountAfter(299).ShouldBe(1);
        context.Log.CountAfter(300).ShouldBe(0);
    }

    [Fact]
    public async Task Readers_of_old_segments_hold_at_most_two_descriptors_and_release_them_when_they_leave()
    {
        await using var context = LogTestContext.Create();
        context.Open();
        await context.AppendAsync(2_000, PayloadSize);
        await context.CloseAsync();
        context.Open();
        var idle = context.Log!.OpenFiles;
        var budgetIdle = context.Budget.InUse;

        var readers = Enumerable.Range(0, 3).Select(_ => context.Log.OpenReaderAtBegin()).ToList();
        var partial = new List<int>();
        foreach (var reader in readers)
        {
            // Each stops in a different segment.
            var count = 0;
            while (count < 300 * (readers.IndexOf(reader) + 1) && reader.TryRead(out _))
            {
                reader.Release();
                count++;
            }

            partial.Add(count);
        }

        var busy = context.Log.OpenFiles;
        readers.ForEach(reader => reader.Dispose());

        busy.ShouldBeLessThanOrEqualTo(idle + SegmentFiles.MaxReadHandles);
        context.Log.OpenFiles.ShouldBe(idle, "the last reader to leave releases the read descriptors");
        context.Budget.InUse.ShouldBe(budgetIdle, "every descriptor went back to the budget");
    }

    [Fact]
    public async Task A_memory_log_writes_no_segment_and_never_gives_a_sequence_twice_across_restarts()
    {
        await using var context = LogTestContext.Create();
        context.Open(inMemory: true);
        var before = await context.AppendAsync(10);
        await context.CloseAsync();

        context.Open(inMemory: true);
        var after = await context.AppendAsync(1);

        SegmentFiles.List(context.Directory).ShouldBeEmpty();
        after.Single().ShouldBeGreaterThan(before.Max());
        (await context.ReadAllAsync()).Select(m => m.Sequence).ShouldBe(after);
    }

    [Fact]
    public async Task FasterLog_head_address_is_read_through_the_pinned_internals()
    {
        await using var context = LogTestContext.Create();
        context.Open();
        await context.AppendAsync(1_000);

        var head = context.Log!.HeadAddress;

        head.ShouldBeGreaterThan(context.Log.BeginAddress, "two pages of memory: the head moved past the first pages");
        head.ShouldBeLessThanOrEqualTo(context.Log.TailAddress);
    }

    /// <summary>
    /// Checks that what was read is every sequence of 1..<paramref name="total"/> but one contiguous range, in order,
    /// once each, and that the range is reported as a hole; returns the missing sequences.
    /// </summary>
    private static List<long> AssertOneHole(LogTestContext context, List<(long Sequence, string Payload)> read, int total)
    {
        var sequences = read.Select(m => m.Sequence).ToList();
        sequences.ShouldBe(sequences.Order().Distinct().ToList(), "in order, each once");
        read.ShouldAllBe(m => m.Payload == $"m{m.Sequence - 1}", "each message is the one published with that sequence");
        var missing = Enumerable.Range(1, total).Select(i => (long)i).Except(sequences).ToList();
        missing.ShouldNotBeEmpty("something was damaged");
        var (first, last) = (missing[0], missing[^1]);
        (last - first + 1).ShouldBe(missing.Count, "what is missing is one contiguous range");
        context.Log!.Holes.ShouldContain(hole => hole.FirstSequence == first && hole.LastSequence == last,
            $"the hole {first}..{last} is recorded; holes: {string.Join(", ", context.Log.Holes)}");
        context.Logs.Lines.ShouldContain(line => line.Contains($"sequences {first}..{last}", StringComparison.Ordinal));
        return missing;
    }

    private static void TruncateToHalf(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
        file.SetLength(file.Length / 2);
    }
}
