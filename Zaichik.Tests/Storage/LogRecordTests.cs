using System.Buffers.Binary;
using Zaichik.Server.Storage;
using Zaichik.Server.Storage.Internal;

namespace Zaichik.Tests.Storage;

public sealed class LogRecordTests
{
    [Fact]
    public void Whole_record_round_trips_sequence_timestamp_key_and_payload()
    {
        var entry = new byte[64];
        var length = LogRecord.WriteWhole(entry, 77, 1234, hasKey: true, "key"u8, default, ProducerStamp.None, "payload"u8);

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

        LogRecord.TryRead(entry.AsSpan(0, LogRecord.WriteWhole(entry, 1, 1, hasKey: true, default, default, ProducerStamp.None, "p"u8)), out var emptyKey).ShouldBeTrue();
        emptyKey.HasKey.ShouldBeTrue();
        LogRecord.TryRead(entry.AsSpan(0, LogRecord.WriteWhole(entry, 1, 1, hasKey: false, default, default, ProducerStamp.None, "p"u8)), out var noKey).ShouldBeTrue();
        noKey.HasKey.ShouldBeFalse();
    }

    [Fact]
    public void First_fragment_carries_the_whole_payload_length_and_continuations_carry_the_rest_under_the_same_sequence()
    {
        var entry = new byte[64];

        LogRecord.TryRead(entry.AsSpan(0, LogRecord.WriteFirst(entry, 5, 9, true, "k"u8, 0, ProducerStamp.None, 10, default, "abcd"u8)), out var first).ShouldBeTrue();
        first.Kind.ShouldBe(LogRecordKind.First);
        first.Sequence.ShouldBe(5);
        first.PayloadLength.ShouldBe(10);
        first.Part.ToArray().ShouldBe("abcd"u8.ToArray());
        first.Key.ToArray().ShouldBe("k"u8.ToArray());

        LogRecord.TryRead(entry.AsSpan(0, LogRecord.WriteContinuation(entry, 5, 9, default, "efghij"u8)), out var next).ShouldBeTrue();
        next.Kind.ShouldBe(LogRecordKind.Continuation);
        next.Sequence.ShouldBe(5);
        next.TimestampMs.ShouldBe(9);
        next.Part.ToArray().ShouldBe("efghij"u8.ToArray());
    }

    [Fact]
    public void Whole_record_round_trips_headers_and_producer()
    {
        var entry = new byte[128];
        var length = LogRecord.WriteWhole(entry, 12, 99, hasKey: true, "key"u8, "HEAD"u8, new ProducerStamp(7, 3), "payload"u8);

        LogRecord.TryRead(entry.AsSpan(0, length), out var record).ShouldBeTrue();

        entry[4].ShouldBe(LogRecord.Format, "new records are written in format 3");
        record.Kind.ShouldBe(LogRecordKind.Whole);
        record.Sequence.ShouldBe(12);
        record.Key.ToArray().ShouldBe("key"u8.ToArray());
        record.Headers.ToArray().ShouldBe("HEAD"u8.ToArray());
        record.Payload.ToArray().ShouldBe("payload"u8.ToArray());
        record.PayloadLength.ShouldBe(7);
        record.Producer.ShouldBe(new ProducerStamp(7, 3));
        length.ShouldBe(LogRecord.SizeOf(3, 4, 7, new ProducerStamp(7, 3)));
    }

    [Fact]
    public void A_record_without_headers_or_producer_takes_no_more_room_than_in_format_2()
    {
        LogRecord.SizeOf(3, 0, 10, ProducerStamp.None).ShouldBe(LogRecord.HeaderSize + 3 + 10);
    }

    [Fact]
    public void First_fragment_carries_headers_then_payload_and_the_assembler_splits_them_again()
    {
        var entry = new byte[128];
        var length = LogRecord.WriteFirst(entry, 5, 9, true, "k"u8, headersLength: 6, new ProducerStamp(1, 2), payloadLength: 4, "HEADER"u8, "ab"u8);
        LogRecord.TryRead(entry.AsSpan(0, length), out var first).ShouldBeTrue();
        first.Kind.ShouldBe(LogRecordKind.First);
        first.HeadersLength.ShouldBe(6);
        first.PayloadLength.ShouldBe(4);
        first.Producer.ShouldBe(new ProducerStamp(1, 2));

        using var assembler = new FragmentAssembler();
        assembler.Begin(first.Sequence, 64, first.TimestampMs, first.HasKey, first.Key, first.Producer, first.HeadersLength, first.PayloadLength, first.Part);
        LogRecord.TryRead(entry.AsSpan(0, LogRecord.WriteContinuation(entry, 5, 9, default, "cd"u8)), out var next).ShouldBeTrue();
        assembler.Append(next.Part).ShouldBeTrue();

        assembler.Headers.ToArray().ShouldBe("HEADER"u8.ToArray());
        assembler.Payload.ToArray().ShouldBe("abcd"u8.ToArray());
        assembler.Key.ToArray().ShouldBe("k"u8.ToArray());
        assembler.Producer.ShouldBe(new ProducerStamp(1, 2));
    }

    [Fact]
    public void Format_2_record_built_from_its_documented_layout_is_read_without_headers_or_producer()
    {
        // [crc u32][format u8 = 2][flags u8][key length u16][sequence i64][timestamp i64][key][payload], little-endian.
        var entry = new byte[LogRecord.HeaderSize + 3 + 5];
        entry[4] = 2;
        entry[5] = 0x01;
        BinaryPrimitives.WriteUInt16LittleEndian(entry.AsSpan(6), 3);
        BinaryPrimitives.WriteInt64LittleEndian(entry.AsSpan(8), 41);
        BinaryPrimitives.WriteInt64LittleEndian(entry.AsSpan(16), 1_700_000_000_000);
        "key"u8.CopyTo(entry.AsSpan(24));
        "hello"u8.CopyTo(entry.AsSpan(27));
        BinaryPrimitives.WriteUInt32LittleEndian(entry, LogRecord.Checksum(entry.AsSpan(4)));

        LogRecord.TryRead(entry, out var record).ShouldBeTrue();

        record.Kind.ShouldBe(LogRecordKind.Whole);
        record.Sequence.ShouldBe(41);
        record.TimestampMs.ShouldBe(1_700_000_000_000);
        record.Key.ToArray().ShouldBe("key"u8.ToArray());
        record.Payload.ToArray().ShouldBe("hello"u8.ToArray());
        record.Headers.Length.ShouldBe(0);
        record.Producer.ShouldBe(ProducerStamp.None);
    }

    [Fact]
    public void Format_2_record_claiming_a_field_only_format_3_has_is_refused()
    {
        var entry = new byte[128];
        var length = LogRecord.WriteWhole(entry, 1, 1, false, default, "H"u8, new ProducerStamp(1, 1), "p"u8);
        entry[4] = LogRecord.Format2;
        BinaryPrimitives.WriteUInt32LittleEndian(entry, LogRecord.Checksum(entry.AsSpan(4, length - 4)));

        LogRecord.TryRead(entry.AsSpan(0, length), out _).ShouldBeFalse();
    }

    [Fact]
    public void Changing_any_single_byte_of_a_record_with_headers_and_producer_is_detected()
    {
        var entry = new byte[128];
        var length = LogRecord.WriteWhole(entry, 3, 42, true, "key"u8, "headers"u8, new ProducerStamp(99, 1234), "a payload"u8);

        for (var i = 0; i < length; i++)
        {
            var damaged = entry.AsSpan(0, length).ToArray();
            damaged[i] ^= 0x40;
            LogRecord.TryRead(damaged, out _).ShouldBeFalse($"a change at byte {i} went unnoticed");
        }
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
        var length = LogRecord.WriteWhole(entry, 0, 1, false, default, default, ProducerStamp.None, "p"u8);

        LogRecord.TryRead(entry.AsSpan(0, length), out _).ShouldBeFalse();
    }

    [Fact]
    public void Changing_any_single_byte_of_a_record_is_detected()
    {
        var entry = new byte[64];
        var length = LogRecord.WriteWhole(entry, 3, 42, true, "key"u8, default, ProducerStamp.None, "a payload of some length"u8);

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
        var length = LogRecord.WriteFirst(entry, 1, 1, false, default, 0, ProducerStamp.None, 2, default, "abcd"u8);

        LogRecord.TryRead(entry.AsSpan(0, length), out _).ShouldBeFalse();
    }

    [Fact]
    public void Assembler_completes_when_every_part_has_arrived()
    {
        using var assembler = new FragmentAssembler();
        assembler.Begin(9, 64, 5, true, "k"u8, ProducerStamp.None, 0, 6, "ab"u8);

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
        assembler.Begin(9, 64, 5, false, default, ProducerStamp.None, 0, 3, "ab"u8);

        assembler.Append("cd"u8).ShouldBeFalse();

        assembler.InProgress.ShouldBeFalse();
    }

    [Fact]
    public void Page_entries_stop_at_padding_and_flag_a_length_that_runs_past_the_page()
    {
        var page = new byte[256];
        var entry = new byte[64];
        var length = LogRecord.WriteWhole(entry, 1, 1, false, default, default, ProducerStamp.None, "abc"u8);
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
