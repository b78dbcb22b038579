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
}
