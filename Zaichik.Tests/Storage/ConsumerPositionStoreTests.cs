using Zaichik.Server.Storage;

namespace Zaichik.Tests.Storage;

public sealed class ConsumerPositionStoreTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "zaichik-positions-" + Guid.NewGuid().ToString("N"));
    private readonly FileBudget _budget = new(100);

    public ConsumerPositionStoreTests() => Directory.CreateDirectory(_directory);

    private string FileOf(string name) => Path.Combine(_directory, ConsumerPositionStore.FolderName, name + ".position");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void A_commit_is_written_by_the_next_flush_and_read_back_after_reopening()
    {
        using (var store = new ConsumerPositionStore(_directory, _budget))
        {
            store.Commit("billing", 41);
            store.Commit("billing", 42);
            File.Exists(FileOf("billing")).ShouldBeFalse("a commit only records the position; the flush writes it");
            store.IsDirty.ShouldBeTrue();
            store.Flush(flushToDisk: true);
            store.IsDirty.ShouldBeFalse();
            store.Commit("billing", 40);
        }

        using var reopened = new ConsumerPositionStore(_directory, _budget);
        reopened.Get("billing", out var sequence, out _).ShouldBe(PositionState.Committed);
        sequence.ShouldBe(42, "positions never go back");
        reopened.Get("audit", out _, out _).ShouldBe(PositionState.None);
        _budget.InUse.ShouldBe(0, "loading reads each file and closes it");
    }

    [Fact]
    public async Task A_commit_is_durable_once_a_flush_to_disk_wrote_it_not_after_a_flush_to_the_page_cache()
    {
        using var store = new ConsumerPositionStore(_directory, _budget);
        var first = store.Commit("billing", 10);
        var waiting = store.WhenDurableAsync(first);
        store.Commit("billing", 5).ShouldBe(first, "a commit that moves nothing waits for the one that moved it");

        store.Flush(flushToDisk: false);
        waiting.IsCompleted.ShouldBeFalse("written without fsync is not durable");
        var second = store.Commit("audit", 3);
        second.ShouldBeGreaterThan(first);
        var later = store.WhenDurableAsync(second);

        store.Flush(flushToDisk: true);
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        await later.WaitAsync(TimeSpan.FromSeconds(10));
        store.Commit("billing", 10).ShouldBe(0, "nothing left to wait for");
        store.WhenDurableAsync(second).IsCompletedSuccessfully.ShouldBeTrue();
    }

    [Fact]
    public async Task A_consumer_that_leaves_makes_its_commit_durable_and_closing_fails_what_was_never_written()
    {
        using (var store = new ConsumerPositionStore(_directory, _budget))
        {
            var version = store.Commit("billing", 10);
            var waiting = store.WhenDurableAsync(version);
            store.Release("billing", flushToDisk: true);
            await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        }

        var closing = new ConsumerPositionStore(_directory, _budget);
        var unwritten = closing.WhenDurableAsync(closing.Commit("billing", 20));
        closing.Dispose();
        var failure = await Should.ThrowAsync<IOException>(unwritten.WaitAsync(TimeSpan.FromSeconds(10)));
        failure.Message.ShouldContain("closed");
    }

    [Theory]
    [InlineData("random")]
    [InlineData("zeros")]
    [InlineData("directory")]
    public void A_position_file_that_cannot_be_read_is_lost_never_taken_as_no_position(string damage)
    {
        using (var store = new ConsumerPositionStore(_directory, _budget))
        {
            store.Commit("billing", 100);
            store.Flush(flushToDisk: false);
        }

        File.Delete(FileOf("billing"));
        if (damage == "directory")
        {
            Directory.CreateDirectory(FileOf("billing"));
        }
        else
        {
            File.WriteAllBytes(FileOf("billing"), damage == "zeros" ? new byte[128] : Enumerable.Range(0, 128).Select(i => (byte)(i * 13 + 1)).ToArray());
        }

        using var reopened = new ConsumerPositionStore(_directory, _budget);
        reopened.Get("billing", out _, out var reason).ShouldBe(PositionState.Lost);
        reason.ShouldNotBeNull().ShouldContain("billing.position");
        reopened.Lost.Single().Name.ShouldBe("billing");
        reopened.Lowest().ShouldBe(0, "while a position is lost, nothing is truncated for it");
    }

    [Fact]
    public void A_lost_position_can_be_set_where_the_consumer_says_and_is_written_at_once()
    {
        using (var store = new ConsumerPositionStore(_directory, _budget))
        {
            store.Commit("billing", 100);
            store.Flush(flushToDisk: false);
        }

        File.WriteAllBytes(FileOf("billing"), new byte[128]);
        using (var store = new ConsumerPositionStore(_directory, _budget))
        {
            store.Get("billing", out _, out _).ShouldBe(PositionState.Lost);
            store.Reset("billing", 57, flushToDisk: true);
            store.Get("billing", out var sequence, out _).ShouldBe(PositionState.Committed);
            sequence.ShouldBe(57);
        }

        using var reopened = new ConsumerPositionStore(_directory, _budget);
        reopened.Get("billing", out var kept, out _).ShouldBe(PositionState.Committed);
        kept.ShouldBe(57);
    }

    [Fact]
    public void A_consumer_that_leaves_closes_its_file()
    {
        using var store = new ConsumerPositionStore(_directory, _budget);
        store.Commit("billing", 1);
        store.Flush(flushToDisk: false);
        store.OpenFiles.ShouldBe(1);

        store.Commit("billing", 2);
        store.Release("billing", flushToDisk: false);

        store.OpenFiles.ShouldBe(0);
        _budget.InUse.ShouldBe(0);
        using var reopened = new ConsumerPositionStore(_directory, _budget);
        reopened.Get("billing", out var sequence, out _);
        sequence.ShouldBe(2, "what changed is written as the consumer leaves");
    }
}
