using Zaichik.Server.Storage;
using Zaichik.Server.Storage.Internal;

namespace Zaichik.Tests.Storage;

public sealed class SlotFileTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "zaichik-slots-" + Guid.NewGuid().ToString("N"));

    public SlotFileTests() => Directory.CreateDirectory(_directory);

    private string PathOf => Path.Combine(_directory, "slots");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void The_newest_record_is_read_back_after_reopening_and_the_file_never_grows()
    {
        using (var slots = new SlotFile(PathOf, 4096, FileBudget.Unlimited))
        {
            slots.State.ShouldBe(SlotFileState.Empty);
            slots.Write(1, [1, 2, 3], flush: true);
            slots.Write(2, [4, 5], flush: true);
            slots.Write(3, [6], flush: true);
        }

        using var reopened = new SlotFile(PathOf, 4096, FileBudget.Unlimited);

        reopened.State.ShouldBe(SlotFileState.Valid);
        reopened.Generations().ShouldBe([3L, 2L]);
        reopened.ReadNewest(out var generation).ShouldBe([(byte)6]);
        generation.ShouldBe(3);
        reopened.Read(2).ShouldBe([(byte)4, (byte)5]);
        reopened.Read(1).ShouldBeNull("the oldest record's slot was reused");
        new FileInfo(PathOf).Length.ShouldBe(2 * 4096, "records overwrite the two slots and never grow the file");
    }

    [Fact]
    public void A_torn_newest_slot_falls_back_to_the_record_before_it_and_the_next_write_overwrites_the_torn_one()
    {
        using (var slots = new SlotFile(PathOf, 4096, FileBudget.Unlimited))
        {
            slots.Write(7, [1, 1, 1], flush: true);
            slots.Write(8, [2, 2, 2], flush: true);
        }

        // Record 8 went to slot 1; damage one byte of it, as a write cut short by a power cut would.
        Damage(4096 + 17);

        using (var reopened = new SlotFile(PathOf, 4096, FileBudget.Unlimited))
        {
            reopened.ReadNewest(out var generation).ShouldBe([(byte)1, (byte)1, (byte)1]);
            generation.ShouldBe(7);
            reopened.Write(9, [3], flush: true);
        }

        using var again = new SlotFile(PathOf, 4096, FileBudget.Unlimited);
        again.Generations().ShouldBe([9L, 7L], "the torn slot was overwritten, the good one kept");
    }

    [Fact]
    public void A_write_not_flushed_never_overwrites_the_newest_flushed_record()
    {
        using var slots = new SlotFile(PathOf, 4096, FileBudget.Unlimited);
        slots.Write(1, [1], flush: true);
        slots.Write(2, [2], flush: false);
        slots.Write(3, [3], flush: false);

        slots.Generations().ShouldBe([3L, 1L], "unflushed records take turns in the other slot");
        slots.Read(1).ShouldBe([(byte)1]);
        slots.Flushes.ShouldBe(1);

        slots.Write(4, [4], flush: true);
        slots.Write(5, [5], flush: false);

        slots.Generations().ShouldBe([5L, 4L], "once 4 is flushed, 1 may go");
        slots.Read(4).ShouldBe([(byte)4]);
        slots.Flushes.ShouldBe(2);
    }

    [Fact]
    public void A_file_with_content_but_no_valid_slot_is_damaged_and_one_of_zeros_is_empty()
    {
        File.WriteAllBytes(PathOf, Enumerable.Range(0, 8192).Select(i => (byte)(i * 7)).ToArray());
        using (var random = new SlotFile(PathOf, 4096, FileBudget.Unlimited))
        {
            random.State.ShouldBe(SlotFileState.Damaged);
            random.ReadNewest(out _).ShouldBeNull();
        }

        File.WriteAllBytes(PathOf, new byte[8192]);
        using var zeros = new SlotFile(PathOf, 4096, FileBudget.Unlimited);
        zeros.State.ShouldBe(SlotFileState.Empty);
    }

    [Fact]
    public void A_slot_file_in_place_of_a_directory_is_refused_with_what_it_is()
    {
        Directory.CreateDirectory(PathOf);

        var error = Should.Throw<WrongFileKindException>(() => new SlotFile(PathOf, 4096, FileBudget.Unlimited));

        error.Kind.ShouldBe(FileKind.Directory);
        error.Message.ShouldContain("a directory");
    }

    [Fact]
    public void Each_open_slot_file_takes_a_descriptor_from_the_budget_and_gives_it_back()
    {
        var budget = new FileBudget(1);
        using (new SlotFile(PathOf, 4096, budget))
        {
            budget.InUse.ShouldBe(1);
            Should.Throw<StorageExhaustedException>(() => new SlotFile(PathOf + "2", 4096, budget)).Message.ShouldContain("Storage:MaxOpenFiles");
        }

        budget.InUse.ShouldBe(0);
    }

    private void Damage(long offset)
    {
        using var file = File.OpenWrite(PathOf);
        file.Position = offset;
        file.WriteByte(0xFF);
    }
}
