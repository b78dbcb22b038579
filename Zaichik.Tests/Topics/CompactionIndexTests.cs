using System.Text;
using Zaichik.Server.Topics;

namespace Zaichik.Tests.Topics;

public sealed class CompactionIndexTests
{
    private static byte[] Key(string text) => Encoding.UTF8.GetBytes(text);

    [Fact]
    public void Key_accepted_less_than_the_window_ago_is_a_duplicate_of_the_accepted_offset()
    {
        var index = new CompactionIndex(windowMs: 10_000);
        index.Accept(Key("k"), nowMs: 1_000, sequence: 64);

        index.IsDuplicate(Key("k"), nowMs: 10_999, out var acceptedOffset).ShouldBeTrue();
        acceptedOffset.ShouldBe(64);
    }

    [Fact]
    public void Key_is_accepted_again_once_the_window_has_passed()
    {
        var index = new CompactionIndex(windowMs: 10_000);
        index.Accept(Key("k"), nowMs: 1_000, sequence: 64);

        index.IsDuplicate(Key("k"), nowMs: 11_000, out _).ShouldBeFalse();
    }

    [Fact]
    public void Other_keys_are_not_duplicates()
    {
        var index = new CompactionIndex(windowMs: 10_000);
        index.Accept(Key("k1"), nowMs: 0, sequence: 64);

        index.IsDuplicate(Key("k2"), nowMs: 1, out _).ShouldBeFalse();
    }

    [Fact]
    public void Window_is_measured_from_the_last_accepted_message_not_the_last_duplicate()
    {
        var index = new CompactionIndex(windowMs: 10_000);
        index.Accept(Key("k"), nowMs: 0, sequence: 64);
        index.IsDuplicate(Key("k"), nowMs: 9_000, out _).ShouldBeTrue("a duplicate at 9 s must not extend the window");

        index.IsDuplicate(Key("k"), nowMs: 10_000, out _).ShouldBeFalse();
    }

    [Fact]
    public void Sweep_forgets_keys_whose_window_has_passed()
    {
        var index = new CompactionIndex(windowMs: 1_000);
        for (var i = 0; i < 10_000; i++)
        {
            index.Accept(Key($"key-{i}"), nowMs: 0, sequence: i);
        }

        index.Count.ShouldBe(10_000);
        index.Sweep(nowMs: 999).ShouldBe(0);
        index.Sweep(nowMs: 1_000).ShouldBe(10_000);
        index.Count.ShouldBe(0);
    }

    [Fact]
    public void Sweep_keeps_a_key_that_was_accepted_again_after_its_first_window()
    {
        var index = new CompactionIndex(windowMs: 1_000);
        index.Accept(Key("k"), nowMs: 0, sequence: 1);
        index.Accept(Key("k"), nowMs: 1_500, sequence: 2);

        index.Sweep(nowMs: 2_000);

        index.Count.ShouldBe(1);
        index.IsDuplicate(Key("k"), nowMs: 2_000, out var acceptedOffset).ShouldBeTrue();
        acceptedOffset.ShouldBe(2);
    }

    [Fact]
    public void Accepting_new_keys_retires_stale_ones_without_a_sweep()
    {
        var index = new CompactionIndex(windowMs: 100);
        for (var i = 0; i < 1_000; i++)
        {
            index.Accept(Key($"key-{i}"), nowMs: i * 10, sequence: i);
        }

        // With a 100 ms window and one key every 10 ms only about ten keys are live at any time.
        index.Count.ShouldBeLessThan(50);
    }

    [Fact]
    public void Collecting_gives_the_latest_acceptances_in_a_sequence_range_inside_the_window_across_the_ring_wrapping()
    {
        var index = new CompactionIndex(windowMs: 1_000);

        // Enough acceptances, with the oldest swept, that the ring has wrapped and grown.
        for (var sequence = 1; sequence <= 100; sequence++)
        {
            index.Accept(Key($"k{sequence % 40}"), nowMs: sequence * 10, sequence);
        }

        var block = new Zaichik.Server.Storage.WindowBlock();
        index.CollectAccepted(fromSequence: 55, toSequence: 70, nowMs: 1_050, block);
        var collected = new List<(long Sequence, string Key)>();
        var directory = Directory.CreateTempSubdirectory("zaichik-index-").FullName;
        try
        {
            var file = Zaichik.Server.Storage.WindowFile.Open(directory, (in Zaichik.Server.Storage.WindowRecord _) => { }, out _);
            file.Append(block);
            Zaichik.Server.Storage.WindowFile.Open(directory, (in Zaichik.Server.Storage.WindowRecord record) => collected.Add((record.Sequence, Encoding.UTF8.GetString(record.Key))), out _);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }

        // 55..60 were accepted again as 95..100 (stale); 61..69 are the latest acceptances of their keys; at 1,050 the
        // window (1 s) still holds everything accepted after 50 ms.
        collected.ShouldBe(Enumerable.Range(61, 9).Select(sequence => ((long)sequence, $"k{sequence % 40}")));

        var late = new Zaichik.Server.Storage.WindowBlock();
        index.CollectAccepted(fromSequence: 60, toSequence: 70, nowMs: 1_640, late);
        late.Count.ShouldBe(5, "at 1,640 ms the acceptances at 600..640 ms have left the window");
    }
}
