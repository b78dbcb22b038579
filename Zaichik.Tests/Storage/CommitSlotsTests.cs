using FASTER.core;
using Zaichik.Server.Storage;
using Zaichik.Server.Storage.Internal;

namespace Zaichik.Tests.Storage;

public sealed class CommitSlotsTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "zaichik-commits-" + Guid.NewGuid().ToString("N"));

    public CommitSlotsTests() => Directory.CreateDirectory(_directory);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string SlotsFile => Path.Combine(_directory, CommitSlots.FileName);

    [Fact]
    public void The_newest_commit_is_listed_first_and_read_back_after_reopening()
    {
        using (var slots = new CommitSlots(_directory))
        {
            slots.Commit(0, 100, [1, 2, 3], commitNum: 1, forceWriteMetadata: false);
            slots.Commit(0, 200, [4, 5], commitNum: 2, forceWriteMetadata: false);
            slots.Commit(0, 300, [6], commitNum: 3, forceWriteMetadata: false);
        }

        using var reopened = new CommitSlots(_directory);

        reopened.ListCommits().ShouldBe([3L, 2L]);
        reopened.GetCommitMetadata(3).ShouldBe([(byte)6]);
        reopened.GetCommitMetadata(2).ShouldBe([(byte)4, (byte)5]);
        reopened.GetCommitMetadata(1).ShouldBeNull("the oldest commit's slot was reused");
        new FileInfo(SlotsFile).Length.ShouldBe(2 * CommitSlots.SlotSize, "commits overwrite the two slots and never grow the file");
    }

    [Fact]
    public void A_torn_newest_slot_falls_back_to_the_commit_before_it()
    {
        using (var slots = new CommitSlots(_directory))
        {
            slots.Commit(0, 100, [1, 1, 1], commitNum: 7, forceWriteMetadata: false);
            slots.Commit(0, 200, [2, 2, 2], commitNum: 8, forceWriteMetadata: false);
        }

        // Commit 8 went to slot 1; damage one byte of its metadata, as a write cut short by power loss would.
        using (var file = File.OpenWrite(SlotsFile))
        {
            file.Position = CommitSlots.SlotSize + 17;
            file.WriteByte(0xFF);
        }

        using var reopened = new CommitSlots(_directory);

        reopened.ListCommits().ShouldBe([7L]);
        reopened.GetCommitMetadata(7).ShouldBe([(byte)1, (byte)1, (byte)1]);
        reopened.GetCommitMetadata(8).ShouldBeNull();
    }

    [Fact]
    public void After_a_torn_slot_the_next_commit_overwrites_the_torn_one_not_the_good_one()
    {
        using (var slots = new CommitSlots(_directory))
        {
            slots.Commit(0, 100, [1], commitNum: 1, forceWriteMetadata: false);
            slots.Commit(0, 200, [2], commitNum: 2, forceWriteMetadata: false);
        }

        using (var file = File.OpenWrite(SlotsFile))
        {
            file.Position = CommitSlots.SlotSize;
            file.Write(new byte[64]);
        }

        using var reopened = new CommitSlots(_directory);
        reopened.Commit(0, 300, [3], commitNum: 3, forceWriteMetadata: false);

        reopened.ListCommits().ShouldBe([3L, 1L]);
    }

    [Fact]
    public void Metadata_larger_than_a_slot_is_refused_and_the_held_commits_survive()
    {
        using var slots = new CommitSlots(_directory);
        slots.Commit(0, 100, [9], commitNum: 1, forceWriteMetadata: false);

        Should.Throw<InvalidOperationException>(() => slots.Commit(0, 200, new byte[CommitSlots.SlotSize], commitNum: 2, forceWriteMetadata: false));

        slots.ListCommits().ShouldBe([1L]);
    }

    [Fact]
    public async Task A_log_recovers_its_records_from_the_commit_slots()
    {
        var storage = new StorageOptions();
        var entry = new byte[256];
        await using (var log = TopicLog.Open(_directory, storage))
        {
            for (var i = 0; i < 100; i++)
            {
                var length = LogRecord.WriteWhole(entry, timestampMs: i, false, default, new byte[100]);
                await log.AppendAsync(entry.AsMemory(0, length), CancellationToken.None);
            }

            await log.CommitAsync(CancellationToken.None);
        }

        await using var reopened = TopicLog.Open(_directory, storage);

        File.Exists(SlotsFile).ShouldBeTrue();
        CountRecords(reopened).ShouldBe(100);
    }

    [Fact]
    public async Task A_log_written_with_FasterLogs_own_commit_files_still_recovers_from_them()
    {
        // A topic folder from before the commit slots: FasterLog's default commit manager under commits/.
        var entry = new byte[256];
        using (var device = Devices.CreateLogDevice(Path.Combine(_directory, "log"), preallocateFile: false, recoverDevice: true))
        using (var legacy = new FasterLog(new FasterLogSettings { LogDevice = device, LogCommitDir = Path.Combine(_directory, "commits"), PageSizeBits = 16, MemorySizeBits = 20, SegmentSizeBits = 22, LogChecksum = LogChecksumType.None }))
        {
            for (var i = 0; i < 50; i++)
            {
                var length = LogRecord.WriteWhole(entry, timestampMs: i, false, default, new byte[100]);
                await legacy.EnqueueAsync(entry.AsMemory(0, length));
            }

            await legacy.CommitAsync();
        }

        await using var reopened = TopicLog.Open(_directory, new StorageOptions());

        CountRecords(reopened).ShouldBe(50);
        File.Exists(SlotsFile).ShouldBeFalse("a legacy log keeps the commit files it recovers from");
    }

    private static int CountRecords(TopicLog log)
    {
        using var scanner = log.Range(log.BeginAddress, log.TailAddress);
        var count = 0;
        while (scanner.GetNext(out _, out _, out _))
        {
            count++;
        }

        return count;
    }
}
