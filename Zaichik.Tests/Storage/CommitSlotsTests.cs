using FASTER.core;
using Zaichik.Server.Storage;
using Zaichik.Server.Storage.Internal;

namespace Zaichik.Tests.Storage;

public sealed class CommitSlotsTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "zaichik-commits-" + Guid.NewGuid().ToString("N"));

    public CommitSlotsTests() => Directory.CreateDirectory(_directory);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void A_commit_whose_cookie_was_taken_before_a_raised_bound_writes_no_record_that_would_lower_it()
    {
        var pageFlushes = 0;
        using var slots = CommitSlots.Open(_directory, FileBudget.Unlimited, () => pageFlushes++);

        Commit(slots, 1, until: 1_000, last: 10, reserved: 4_096);
        Commit(slots, 2, until: 2_000, last: 20, reserved: 8_192);
        // Its cookie was taken before commit 2 raised the bound, and it reached FasterLog after commit 2.
        Commit(slots, 3, until: 2_100, last: 21, reserved: 4_096);

        pageFlushes.ShouldBe(3, "every commit's pages are made durable");
        slots.Latest!.Value.CommitNum.ShouldBe(2, "the newest record keeps the raised bound");
        CommitCookie.TryRead(slots.Latest.Value.Info.Cookie)!.Value.ReservedUntil.ShouldBe(8_192);

        Commit(slots, 4, until: 2_200, last: 22, reserved: 8_192);
        slots.Latest!.Value.CommitNum.ShouldBe(4);
        slots.Flushes.ShouldBe(2, "the first commit and the raise were flushed, commit 4 was only written");
    }

    private static void Commit(CommitSlots slots, long commitNum, long until, long last, long reserved)
    {
        var record = new FasterLogRecoveryInfo
        {
            BeginAddress = LogRecovery.FirstAddress,
            UntilAddress = until,
            CommitNum = commitNum,
            Cookie = new CommitCookie(false, 1, last, reserved).ToBytes(),
        }.ToByteArray();
        slots.Commit(LogRecovery.FirstAddress, until, record, commitNum, forceWriteMetadata: false);
        slots.TakeFailure(commitNum).ShouldBeNull();
    }
}
