using Zaichik.Server.Storage;
using Zaichik.Server.Storage.Internal;

namespace Zaichik.Tests.Storage;

public sealed class LogRecordTests
{
    [Fact]
    public void Whole_record_round_trips_sequence_timestamp_key_and_payload()
    {
        var entry = new byte[64];
        var length = LogRecord.WriteWhole(entry, 77, 1234, hasKey: true, "key"u8, "payload"u8);

        LogRecord.TryRead(entry.AsSpan(0, length), out var record).ShouldBeTrue();

        record.Kind.ShouldBe(LogRecordKind.Whole);
        record.Sequence.ShouldBe(77);
        record.TimestampMs.ShouldBe(1234);
        record.HasKey.ShouldBeTrue();
        record.Key.ToArray().ShouldBe("key"u8.ToArray());
        record.Part.ToArray().ShouldBe("payload"u8.ToArray());
        record.PayloadLength.ShouldBe(7);
    }

    [Fact]
    public void Empty_key_is_a_key_and_no_key_is_not()
    {
        var entry = new byte[64];

        LogRecord.TryRead(entry.AsSpan(0, LogRecord.WriteWhole(entry, 1, 1, hasKey: true, default, "p"u8)), out var emptyKey).ShouldBeTrue();
        emptyKey.HasKey.ShouldBeTrue();
        LogRecord.TryRead(entry.AsSpan(0, LogRecord.WriteWhole(entry, 1, 1, hasKey: false, default, "p"u8)), out var noKey).ShouldBeTrue();
        noKey.HasKey.ShouldBeFalse();
    }

    [Fact]
    public void First_fragment_carries_the_whole_payload_length_and_continuations_carry_the_rest_under_the_same_sequence()
    {
        var entry = new byte[64];

        LogRecord.TryRead(entry.AsSpan(0, LogRecord.WriteFirst(entry, 5, 9, true, "k"u8, 10, "abcd"u8)), out var first).ShouldBeTrue();
        first.Kind.ShouldBe(LogRecordKind.First);
        first.Sequence.ShouldBe(5);
        first.PayloadLength.ShouldBe(10);
        first.Part.ToArray().ShouldBe("abcd"u8.ToArray());
        first.Key.ToArray().ShouldBe("k"u8.ToArray());

        LogRecord.TryRead(entry.AsSpan(0, LogRecord.WriteContinuation(entry, 5, 9, "efghij"u8)), out var next).ShouldBeTrue();
        next.Kind.ShouldBe(LogRecordKind.Continuation);
        next.Sequence.ShouldBe(5);
        next.TimestampMs.ShouldBe(9);
        next.Part.ToArray().ShouldBe("efghij"u8.ToArray());
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 3 })]
    [InlineData(new byte[] { 0, 0, 0, 0, 2, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 })]
    [InlineData(new byte[] { 0, 0, 0, 0, 2, 0, 0xFF, 0xFF, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 })]
    [InlineData(new byte[] { 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 })]
    public void Truncated_unknown_or_other_format_entries_are_refused(byte[] entry)
    {
        LogRecord.TryRead(entry, out _).ShouldBeFalse();
    }

    [Fact]
    public void A_record_with_a_valid_checksum_but_no_positive_sequence_is_refused()
    {
        var entry = new byte[64];
        var length = LogRecord.WriteWhole(entry, 0, 1, false, default, "p"u8);

        LogRecord.TryRead(entry.AsSpan(0, length), out _).ShouldBeFalse();
    }

    [Fact]
    public void Changing_any_single_byte_of_a_record_is_detected()
    {
        var entry = new byte[64];
        var length = LogRecord.WriteWhole(entry, 3, 42, true, "key"u8, "a payload of some length"u8);

        for (var i = 0; i < length; i++)
        {
            var damaged = entry.AsSpan(0, length).ToArray();
            damaged[i] ^= 0x10;

            LogRecord.TryRead(damaged, out _).ShouldBeFalse($"a change at byte {i} went unnoticed");
        }
    }

    [Fact]
    public void First_fragment_claiming_less_payload_than_it_carries_is_refused()
    {
        var entry = new byte[64];
        var length = LogRecord.WriteFirst(entry, 1, 1, false, default, 2, "abcd"u8);

        LogRecord.TryRead(entry.AsSpan(0, length), out _).ShouldBeFalse();
    }

    [Fact]
    public void Assembler_completes_when_every_part_has_arrived()
    {
        using var assembler = new FragmentAssembler();
        assembler.Begin(9, 64, 5, true, "k"u8, 6, "ab"u8);

        assembler.Append("cd"u8).ShouldBeFalse();
        assembler.Append("ef"u8).ShouldBeTrue();

        assembler.Payload.ToArray().ShouldBe("abcdef"u8.ToArray());
        assembler.Key.ToArray().ShouldBe("k"u8.ToArray());
        assembler.Sequence.ShouldBe(9);
        assembler.Address.ShouldBe(64);
    }

    [Fact]
    public void Assembler_abandons_a_message_whose_parts_overflow_its_declared_length()
    {
        using var assembler = new FragmentAssembler();
        assembler.Begin(9, 64, 5, false, default, 3, "ab"u8);

        assembler.Append("cd"u8).ShouldBeFalse();

        assembler.InProgress.ShouldBeFalse();
    }

    [Fact]
    public void Page_entries_stop_at_padding_and_flag_a_length_that_runs_past_the_page()
    {
        var page = new byte[256];
        var entry = new byte[64];
        var length = LogRecord.WriteWhole(entry, 1, 1, false, default, "abc"u8);
        BitConverter.TryWriteBytes(page.AsSpan(0), length);
        entry.AsSpan(0, length).CopyTo(page.AsSpan(4));

        var entries = new PageEntries(page, 4096, 0);
        entries.Next(out var address, out var first).ShouldBe(PageStep.Entry);
        address.ShouldBe(4096);
        LogRecord.TryRead(first, out _).ShouldBeTrue();
        entries.Next(out _, out _).ShouldBe(PageStep.End, "a zero length ends the page");

        BitConverter.TryWriteBytes(page.AsSpan(0), 10_000);
        new PageEntries(page, 0, 0).Next(out _, out _).ShouldBe(PageStep.Damaged);
        BitConverter.TryWriteBytes(page.AsSpan(0), -5);
        new PageEntries(page, 0, 0).Next(out _, out _).ShouldBe(PageStep.Damaged);
    }
}
