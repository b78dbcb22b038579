using Zaichik.Server.Storage;
using Zaichik.Server.Topics;

namespace Zaichik.Tests.Topics;

public sealed class ProducerWindowTests
{
    private static readonly ProducerWindowOptions Options = new(TimeSpan.FromSeconds(10), MaxPublishesPerProducer: 4, MaxProducers: 3);

    [Fact]
    public void A_stored_publish_is_remembered_with_its_sequence_until_the_window_has_passed()
    {
        var window = new ProducerWindow(Options);
        window.Accept(new ProducerStamp(1, 7), nowMs: 1_000, sequence: 42);

        window.TryGetStored(new ProducerStamp(1, 7), 10_999, out var sequence).ShouldBeTrue();
        sequence.ShouldBe(42);
        window.TryGetStored(new ProducerStamp(1, 7), 11_000, out _).ShouldBeFalse("10 s after it was accepted the window has passed");
        window.TryGetStored(new ProducerStamp(2, 7), 1_000, out _).ShouldBeFalse("another producer's number 7 is another publish");
        window.TryGetStored(new ProducerStamp(1, 8), 1_000, out _).ShouldBeFalse();
    }

    [Fact]
    public void A_producer_keeps_only_its_newest_publishes()
    {
        var window = new ProducerWindow(Options);
        for (var n = 1UL; n <= 6; n++)
        {
            window.Accept(new ProducerStamp(1, n), 1_000, (long)n * 10);
        }

        window.CountOf(1).ShouldBe(4);
        window.TryGetStored(new ProducerStamp(1, 2), 1_000, out _).ShouldBeFalse("only the last 4 are remembered");
        window.TryGetStored(new ProducerStamp(1, 3), 1_000, out var third).ShouldBeTrue();
        third.ShouldBe(30);
        window.TryGetStored(new ProducerStamp(1, 6), 1_000, out var sixth).ShouldBeTrue();
        sixth.ShouldBe(60);
    }

    [Fact]
    public void Past_the_producer_bound_the_least_recently_active_producer_is_forgotten()
    {
        var window = new ProducerWindow(Options);
        window.Accept(new ProducerStamp(1, 1), 1_000, 1);
        window.Accept(new ProducerStamp(2, 1), 1_001, 2);
        window.Accept(new ProducerStamp(3, 1), 1_002, 3);
        window.Accept(new ProducerStamp(1, 2), 1_003, 4);

        window.Accept(new ProducerStamp(4, 1), 1_004, 5);

        window.ProducerCount.ShouldBe(3);
        window.TryGetStored(new ProducerStamp(2, 1), 1_004, out _).ShouldBeFalse("producer 2 was the least recently active");
        window.TryGetStored(new ProducerStamp(1, 1), 1_004, out _).ShouldBeTrue("producer 1 published again, so it was kept");
        window.TryGetStored(new ProducerStamp(4, 1), 1_004, out _).ShouldBeTrue();
    }

    [Fact]
    public void Producers_idle_for_a_window_are_swept()
    {
        var window = new ProducerWindow(Options);
        window.Accept(new ProducerStamp(1, 1), 1_000, 1);
        window.Accept(new ProducerStamp(2, 1), 5_000, 2);

        window.Sweep(11_000).ShouldBe(1);

        window.ProducerCount.ShouldBe(1);
        window.TryGetStored(new ProducerStamp(2, 1), 11_000, out _).ShouldBeTrue();
    }

    [Fact]
    public void Publishes_accepted_out_of_order_are_still_found()
    {
        var window = new ProducerWindow(Options with { MaxPublishesPerProducer = 100 });
        foreach (var n in new ulong[] { 5, 1, 9, 3, 7 })
        {
            window.Accept(new ProducerStamp(1, n), 1_000, (long)n);
        }

        foreach (var n in new ulong[] { 1, 3, 5, 7, 9 })
        {
            window.TryGetStored(new ProducerStamp(1, n), 1_000, out var sequence).ShouldBeTrue($"producer sequence {n}");
            sequence.ShouldBe((long)n);
        }

        window.TryGetStored(new ProducerStamp(1, 4), 1_000, out _).ShouldBeFalse();
    }

    [Fact]
    public void A_publish_stored_again_after_its_window_is_remembered_with_its_new_sequence()
    {
        var window = new ProducerWindow(Options);
        window.Accept(new ProducerStamp(1, 1), 1_000, 1);
        window.Accept(new ProducerStamp(1, 2), 1_000, 2);

        window.Accept(new ProducerStamp(1, 1), 20_000, 3);

        window.TryGetStored(new ProducerStamp(1, 1), 20_000, out var sequence).ShouldBeTrue();
        sequence.ShouldBe(3);
    }

    [Fact]
    public void Memory_stays_bounded_however_many_publishes_a_producer_makes()
    {
        var window = new ProducerWindow(Options with { MaxPublishesPerProducer = 1_000 });
        for (var n = 1UL; n <= 100_000; n++)
        {
            window.Accept(new ProducerStamp(1, n), 1_000, (long)n);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var n = 100_001UL; n <= 200_000; n++)
        {
            window.Accept(new ProducerStamp(1, n), 1_000, (long)n);
            window.TryGetStored(new ProducerStamp(1, n), 1_000, out _);
        }

        (GC.GetAllocatedBytesForCurrentThread() - before).ShouldBe(0, "a steady producer allocates nothing per publish");
        window.CountOf(1).ShouldBe(1_000);
    }

    [Fact]
    public void Collecting_gives_every_remembered_publish_in_a_sequence_range_inside_the_window_however_a_producer_numbers()
    {
        var window = new ProducerWindow(Options);
        window.Accept(new ProducerStamp(1, 5), nowMs: 1_000, sequence: 10);
        window.Accept(new ProducerStamp(2, 1), nowMs: 2_000, sequence: 11);

        // Producer 1 numbers oddly: its number 3 comes after its number 5, and is kept before it.
        window.Accept(new ProducerStamp(1, 3), nowMs: 3_000, sequence: 12);
        window.Accept(new ProducerStamp(1, 6), nowMs: 4_000, sequence: 13);

        var collected = Collect(window, fromSequence: 11, toSequence: 13, nowMs: 5_000);
        collected.ShouldBe([(11L, new ProducerStamp(2, 1)), (12L, new ProducerStamp(1, 3))], ignoreOrder: true);
        Collect(window, fromSequence: 10, toSequence: 14, nowMs: 12_500).Select(entry => entry.Sequence)
            .ShouldBe([12L, 13L], ignoreOrder: true, "at 12.5 s what was accepted at 1 s and 2 s has left the 10 s window");
    }

    private static List<(long Sequence, ProducerStamp Producer)> Collect(ProducerWindow window, long fromSequence, long toSequence, long nowMs)
    {
        var block = new WindowBlock();
        window.CollectStored(fromSequence, toSequence, nowMs, block);
        var collected = new List<(long, ProducerStamp)>();
        var directory = Directory.CreateTempSubdirectory("zaichik-producers-").FullName;
        try
        {
            WindowFile.Open(directory, (in WindowRecord _) => { }, out _).Append(block);
            WindowFile.Open(directory, (in WindowRecord record) => collected.Add((record.Sequence, record.Producer)), out _);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }

        return collected;
    }
}
