using System.Buffers;
using System.Text;
using Zaichik.Protocol;
using static Zaichik.Tests.Protocol.CodecTestHelpers;

namespace Zaichik.Tests.Protocol;

/// <summary>The writer's bytes match the field tables in docs/protocol.md, field by field.</summary>
public sealed class FrameLayoutTests
{
    [Fact]
    public void Hello_frame_encodes_version_idle_timeout_absent_token_and_producer_id()
    {
        var bytes = Encode(w => FrameWriter.Write(w, new HelloFrame(ProtocolVersion.Current, IdleTimeoutMs: 60_000)));

        Hex(bytes).ShouldBe("00 00 00 10 01 00 08 00 00 EA 60 00 00 00 00 00 00 00 00 00");
    }

    [Theory]
    [InlineData((ushort)7)]
    [InlineData((ushort)8)]
    public void Hello_of_a_served_version_decodes_every_field(ushort version)
    {
        // Versions 7 and 8 share the Hello layout: a version 7 server's idle timeout, or a version 7 client's token and
        // producer id, must be read, not dropped as those of an unknown version.
        var bytes = WireBuilder.Frame(FrameType.Hello).U16(version).U32(60_000).U8(1).Str("tk").U64(42).Build();
        var reader = new FrameReader();

        var hello = reader.ReadHello(ReadSingle(reader, bytes));

        hello.ShouldBe(new HelloFrame(version, 60_000, "tk", 42));
    }

    [Fact]
    public void Version_9_Hello_decodes_to_its_version_alone()
    {
        var version9 = WireBuilder.Frame(FrameType.Hello).U16(9).U32(60_000).U8(0).U64(42).Build();
        var reader = new FrameReader();

        var hello = reader.ReadHello(ReadSingle(reader, version9));

        hello.ShouldBe(new HelloFrame(9), "a version this library does not speak is answered UnsupportedVersion; its fields are not read");
    }

    [Fact]
    public void Served_versions_are_7_and_8()
    {
        ProtocolVersion.Current.ShouldBe((ushort)8);
        ProtocolVersion.Minimum.ShouldBe((ushort)7);
        Enumerable.Range(0, 12).Where(v => ProtocolVersion.IsSupported((ushort)v)).ShouldBe([7, 8]);
        ProtocolVersion.SupportedRange.ShouldBe("7 to 8");
    }

    [Fact]
    public void Hello_fields_are_version_idle_timeout_token_then_producer_id()
    {
        var expected = WireBuilder.Frame(FrameType.Hello).U16(5).U32(0).U8(1).Str("tk").U64(0x0102030405060708).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new HelloFrame(5, 0, "tk", ProducerId: 0x0102030405060708)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Version_4_Hello_decodes_to_its_version_alone()
    {
        var version4 = WireBuilder.Frame(FrameType.Hello).U16(4).U32(0).U8(0).Build();
        var reader = new FrameReader();

        var hello = reader.ReadHello(ReadSingle(reader, version4));

        hello.ShouldBe(new HelloFrame(4), "a version 4 client, which sends no producer id, must be answered UnsupportedVersion");
    }

    [Fact]
    public void Hello_of_another_version_decodes_to_its_version_alone()
    {
        // A version 2 Hello: only the version, which the server must still be able to read to answer UnsupportedVersion.
        var reader = new FrameReader();
        var hello = reader.ReadHello(ReadSingle(reader, [0, 0, 0, 3, 0x01, 0, 2]));

        hello.ShouldBe(new HelloFrame(2));
    }

    [Fact]
    public void Version_3_Hello_decodes_to_its_version_alone_although_its_layout_is_unchanged()
    {
        var version3 = WireBuilder.Frame(FrameType.Hello).U16(3).U32(0).U8(1).Str("a-token").Build();
        var reader = new FrameReader();

        var hello = reader.ReadHello(ReadSingle(reader, version3));

        hello.ShouldBe(new HelloFrame(3), "a version 3 client must be answered UnsupportedVersion, so its token is not even read");
    }

    [Fact]
    public void Hello_never_shows_its_token_in_text()
    {
        var text = new HelloFrame(ProtocolVersion.Current, 0, "do-not-print-me-please").ToString();

        text.ShouldNotContain("do-not-print-me-please");
        text.ShouldContain("hidden");
    }

    [Fact]
    public void Ping_and_Pong_carry_their_nonce()
    {
        Hex(Encode(w => FrameWriter.Write(w, new PingFrame(1)))).ShouldBe("00 00 00 09 08 00 00 00 00 00 00 00 01");
        Hex(Encode(w => FrameWriter.Write(w, new PongFrame(ulong.MaxValue)))).ShouldBe("00 00 00 09 09 FF FF FF FF FF FF FF FF");
    }

    [Fact]
    public void CreateTopic_frame_encodes_to_the_documented_example_bytes()
    {
        var frame = new CreateTopicFrame(1, "orders", 86_400_000, 0, Durability.Interval, 500);

        var bytes = Encode(w => FrameWriter.Write(w, frame));

        Hex(bytes).ShouldBe(
            "00 00 00 43 02 00 00 00 00 00 00 00 01 00 06 6F 72 64 65 72 73 00 00 00 00 05 26 5C 00 "
            + "00 00 00 00 00 00 00 00 02 00 00 00 00 00 00 01 F4 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 "
            + "00 00 00 00 00 00 00 00 00");
    }

    [Fact]
    public void Publish_frame_encodes_to_the_documented_example_bytes()
    {
        var frame = new PublishFrame(7, "orders", "a1"u8.ToArray(), "hello"u8.ToArray());

        var bytes = Encode(w => FrameWriter.Write(w, frame));

        Hex(bytes).ShouldBe(
            "00 00 00 2B 03 00 00 00 00 00 00 00 07 00 06 6F 72 64 65 72 73 01 00 02 61 31 00 00 00 05 68 65 6C 6C 6F "
            + "00 00 00 00 00 00 00 00 00 00 00 00");
    }

    [Fact]
    public void Ack_frame_encodes_to_the_documented_example_bytes()
    {
        var bytes = Encode(w => FrameWriter.Write(w, new AckFrame(7, 1, Duplicate: false, Durable: true)));

        Hex(bytes).ShouldBe("00 00 00 14 11 00 00 00 00 00 00 00 07 01 00 00 00 00 00 00 00 01 00 01");
    }

    [Fact]
    public void Subscribe_frame_encodes_to_the_documented_example_bytes()
    {
        var frame = new SubscribeFrame(2, "orders", StartPosition.Retained, 10, DurableName: "billing");

        var bytes = Encode(w => FrameWriter.Write(w, frame));

        Hex(bytes).ShouldBe(
            "00 00 00 33 04 00 00 00 00 00 00 00 02 00 06 6F 72 64 65 72 73 00 00 00 00 00 00 00 00 00 00 00 00 0A "
            + "01 00 07 62 69 6C 6C 69 6E 67 00 00 00 00 00 00 00 00 00 00 00");
    }

    [Fact]
    public void Subscribe_from_a_sequence_encodes_to_the_documented_example_bytes()
    {
        var frame = new SubscribeFrame(3, "orders", StartPosition.Sequence(42), 1);

        var bytes = Encode(w => FrameWriter.Write(w, frame));

        Hex(bytes).ShouldBe(
            "00 00 00 2A 04 00 00 00 00 00 00 00 03 00 06 6F 72 64 65 72 73 02 00 00 00 00 00 00 00 2A 00 00 00 01 00 00 "
            + "00 00 00 00 00 00 00 00 00 00");
    }

    [Fact]
    public void Error_frame_encodes_to_the_documented_example_bytes()
    {
        var bytes = Encode(w => FrameWriter.Write(w, new ErrorFrame(null, ErrorCode.UnsupportedVersion, "v3")));

        Hex(bytes).ShouldBe("00 00 00 08 12 00 00 01 00 02 76 33");
    }

    [Fact]
    public void CreateTopic_fields_are_request_id_topic_retention_compaction_window_durability_commit_interval_limits_then_compaction()
    {
        var expected = WireBuilder.Frame(FrameType.CreateTopic)
            .U64(9).Str("t").I64(60_000).I64(-2).U8(2).I64(250).I64(1_000).I64(1L << 30).U8(1).I64(86_400_000).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new CreateTopicFrame(
            9, "t", 60_000, -2, Durability.Interval, 250, 1_000, 1L << 30, KeepLatestPerKey: true, TombstoneRetentionMs: 86_400_000)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Theory]
    [InlineData(false, 0L, "00 00 00 00 00 00 00 00 00")]
    [InlineData(true, 0L, "01 00 00 00 00 00 00 00 00")]
    [InlineData(true, 3_600_000L, "01 00 00 00 00 00 36 EE 80")]
    [InlineData(false, -1L, "00 FF FF FF FF FF FF FF FF")]
    public void CreateTopic_ends_with_the_keep_latest_per_key_flag_then_the_tombstone_retention_as_i64(
        bool keepLatestPerKey, long tombstoneRetentionMs, string tail)
    {
        var bytes = Encode(w => FrameWriter.Write(w, new CreateTopicFrame(
            1, "t", 0, 0, KeepLatestPerKey: keepLatestPerKey, TombstoneRetentionMs: tombstoneRetentionMs)));

        Hex(bytes).ShouldEndWith(" " + tail, customMessage: "keepLatestPerKey (1 byte) and tombstoneRetentionMs (8 bytes) close the frame");
        bytes.Length.ShouldBe(4 + 1 + 8 + 3 + 8 + 8 + 1 + 8 + 8 + 8 + 1 + 8);
    }

    [Fact]
    public void CreateTopic_with_default_settings_still_writes_a_zero_durability_byte_and_a_zero_commit_interval()
    {
        var expected = WireBuilder.Frame(FrameType.CreateTopic).U64(9).Str("t").I64(0).I64(0).U8(0).I64(0).I64(0).I64(0).U8(0).I64(0).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new CreateTopicFrame(9, "t", 0, 0)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Theory]
    [InlineData(Durability.ServerDefault, (byte)0)]
    [InlineData(Durability.Always, (byte)1)]
    [InlineData(Durability.Interval, (byte)2)]
    [InlineData(Durability.Memory, (byte)3)]
    public void CreateTopic_durability_is_one_byte_with_the_documented_value(Durability durability, byte wire)
    {
        var expected = WireBuilder.Frame(FrameType.CreateTopic).U64(1).Str("t").I64(10).I64(20).U8(wire).I64(-1).I64(0).I64(0).U8(0).I64(0).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new CreateTopicFrame(1, "t", 10, 20, durability, -1)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Publish_without_key_writes_a_zero_flag_and_no_key_length()
    {
        var expected = WireBuilder.Frame(FrameType.Publish).U64(1).Str("t").U8(0).Bytes([0xAA]).U64(0).Bytes([]).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new PublishFrame(1, "t", null, new byte[] { 0xAA })));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Publish_fields_end_with_the_producer_sequence_then_the_header_block()
    {
        var headers = HeaderBlockOf(("trace", true, "abc"u8.ToArray()));
        var expected = WireBuilder.Frame(FrameType.Publish).U64(1).Str("t").U8(0).Bytes([0xAA]).U64(42).Bytes(headers).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new PublishFrame(1, "t", null, new byte[] { 0xAA }, ProducerSequence: 42, Headers: headers)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Header_block_entry_is_kind_key_then_value()
    {
        var expected = WireBuilder.Frame((byte)0).U8(1).Str("trace").Bytes("abc"u8.ToArray()).U8(0).Str("b").Bytes([0xFF]).FieldBytes();

        var block = HeaderBlockOf(("trace", true, "abc"u8.ToArray()), ("b", false, [0xFF]));

        Hex(block).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Subscribe_fields_are_request_id_topic_from_position_prefetch_durable_name_ack_policy_then_the_group_fields()
    {
        var expected = WireBuilder.Frame(FrameType.Subscribe)
            .U64(2).Str("t").U8(2).I64(1_000_000).U32(10).U8(1).Str("audit-1").U8(1).U8(0).U32(0).U32(0).U8(0).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new SubscribeFrame(2, "t", StartPosition.Sequence(1_000_000), 10, "audit-1", AckPolicy.None)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    public static TheoryData<string, byte, long> StartPositionsOnTheWire() => new()
    {
        { "Retained", 0, 0 },
        { "Latest", 1, 0 },
        { "Sequence 1", 2, 1 },
        { "Sequence 42", 2, 42 },
        { "Sequence max", 2, long.MaxValue },
        { "Time epoch", 3, 0 },
        { "Time 2026-11-27T10:00:00Z", 3, 1_795_773_600_000 },
    };

    [Theory]
    [MemberData(nameof(StartPositionsOnTheWire))]
    public void Subscribe_writes_the_start_position_kind_as_the_from_byte_and_its_value_as_the_position(string name, byte from, long position)
    {
        var start = name switch
        {
            "Retained" => StartPosition.Retained,
            "Latest" => StartPosition.Latest,
            _ when from == 2 => StartPosition.Sequence(position),
            _ => StartPosition.Time(position),
        };
        var expected = WireBuilder.Frame(FrameType.Subscribe).U64(2).Str("t").U8(from).I64(position).U32(1).U8(0).U8(0).U8(0).U32(0).U32(0).U8(0).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new SubscribeFrame(2, "t", start, 1)));

        Hex(bytes).ShouldBe(Hex(expected), name);
    }

    [Fact]
    public void Subscribe_without_durable_name_has_a_zero_flag_and_no_name_length_before_its_ack_policy()
    {
        var expected = WireBuilder.Frame(FrameType.Subscribe).U64(2).Str("t").U8(1).I64(0).U32(10).U8(0).U8(0).U8(0).U32(0).U32(0).U8(0).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new SubscribeFrame(2, "t", StartPosition.Latest, 10)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Subscribe_with_an_empty_durable_name_writes_a_present_flag_and_a_zero_length()
    {
        var expected = WireBuilder.Frame(FrameType.Subscribe).U64(2).Str("t").U8(0).I64(0).U32(1).U8(1).U16(0).U8(0).U8(0).U32(0).U32(0).U8(0).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new SubscribeFrame(2, "t", StartPosition.Retained, 1, string.Empty)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Subscribe_to_a_group_ends_with_the_group_name_ack_wait_max_deliver_then_the_dead_letter_topic()
    {
        var expected = WireBuilder.Frame(FrameType.Subscribe)
            .U64(5).Str("orders").U8(0).I64(0).U32(10).U8(0).U8(0)
            .U8(1).Str("invoicing").U32(60_000).U32(5).U8(1).Str("orders.dead").Build();

        var bytes = Encode(w => FrameWriter.Write(w, new SubscribeFrame(
            5, "orders", StartPosition.Retained, 10, Group: "invoicing", AckWaitMs: 60_000, MaxDeliver: 5, DeadLetterTopic: "orders.dead")));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Subscribe_to_a_group_without_a_dead_letter_topic_ends_with_a_zero_flag()
    {
        var expected = WireBuilder.Frame(FrameType.Subscribe)
            .U64(5).Str("t").U8(1).I64(0).U32(1).U8(0).U8(0).U8(1).Str("g").U32(0).U32(uint.MaxValue).U8(0).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new SubscribeFrame(5, "t", StartPosition.Latest, 1, Group: "g", MaxDeliver: uint.MaxValue)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Subscribe_group_fields_are_written_as_given_even_without_a_group()
    {
        // The codec does not judge them: the server answers what a subscription outside a group does with them.
        var expected = WireBuilder.Frame(FrameType.Subscribe)
            .U64(5).Str("t").U8(1).I64(0).U32(1).U8(0).U8(1).U8(0).U32(0x01020304).U32(0x0A0B0C0D).U8(1).Str("").Build();

        var bytes = Encode(w => FrameWriter.Write(w, new SubscribeFrame(
            5, "t", StartPosition.Latest, 1, null, AckPolicy.None, Group: null, AckWaitMs: 0x01020304, MaxDeliver: 0x0A0B0C0D, DeadLetterTopic: string.Empty)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Unsubscribe_fields_are_request_id_then_topic()
    {
        var expected = WireBuilder.Frame(FrameType.Unsubscribe).U64(3).Str("t").Build();

        var bytes = Encode(w => FrameWriter.Write(w, new UnsubscribeFrame(3, "t")));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Bare_commit_is_a_single_mode_0_byte_and_carries_no_sequence()
    {
        var bytes = Encode(w => FrameWriter.Write(w, new CommitFrame(null, 42)));

        Hex(bytes).ShouldBe("00 00 00 02 06 00");
    }

    [Fact]
    public void Commit_up_to_a_sequence_is_mode_1_topic_then_sequence_as_u64()
    {
        var bytes = Encode(w => FrameWriter.Write(w, new CommitFrame("t", 500)));

        Hex(bytes).ShouldBe("00 00 00 0D 06 01 00 01 74 00 00 00 00 00 00 01 F4");
    }

    [Fact]
    public void Commit_of_a_single_sequence_is_mode_2_topic_then_sequence_as_u64()
    {
        var bytes = Encode(w => FrameWriter.Write(w, new CommitFrame("t", 500, Single: true)));

        Hex(bytes).ShouldBe("00 00 00 0D 06 02 00 01 74 00 00 00 00 00 00 01 F4");
    }

    [Theory]
    [InlineData(false, (byte)1)]
    [InlineData(true, (byte)2)]
    public void Commit_mode_is_the_only_byte_that_tells_up_to_from_single(bool single, byte mode)
    {
        var expected = WireBuilder.Frame(FrameType.Commit).U8(mode).Str("orders").U64(long.MaxValue).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new CommitFrame("orders", long.MaxValue, single)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Single_commit_without_a_topic_is_refused_before_a_byte_is_written()
    {
        var output = new ArrayBufferWriter<byte>();

        Should.Throw<ArgumentException>(() => FrameWriter.Write(output, new CommitFrame(null, 7, Single: true)));

        output.WrittenCount.ShouldBe(0, "a single Commit names the delivery it commits, so it has no bare form");
    }

    [Fact]
    public void Nack_fields_are_topic_sequence_then_delay()
    {
        var expected = WireBuilder.Frame(FrameType.Nack).Str("orders").U64(3).U32(5_000).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new NackFrame("orders", 3, 5_000)));

        Hex(bytes).ShouldBe(Hex(expected));
        Hex(bytes).ShouldBe("00 00 00 15 0A 00 06 6F 72 64 65 72 73 00 00 00 00 00 00 00 03 00 00 13 88");
    }

    [Fact]
    public void Nack_without_a_delay_writes_a_zero_u32()
    {
        var bytes = Encode(w => FrameWriter.Write(w, new NackFrame("t", long.MaxValue)));

        Hex(bytes).ShouldBe("00 00 00 10 0A 00 01 74 7F FF FF FF FF FF FF FF 00 00 00 00");
    }

    [Fact]
    public void Close_is_only_its_type_byte()
    {
        var bytes = Encode(w => FrameWriter.Write(w, default(CloseFrame)));

        Hex(bytes).ShouldBe("00 00 00 01 07");
    }

    [Fact]
    public void Message_fields_are_topic_sequence_timestamp_key_payload_headers_then_delivery_count()
    {
        var expected = WireBuilder.Frame(FrameType.Message)
            .Str("t").U64(4096).I64(1_700_000_000_000).U8(1).U16(1).Raw(0x6B).Bytes([0x01, 0x02]).Bytes([]).U32(1).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new MessageFrame("t", 4096, 1_700_000_000_000, new byte[] { 0x6B }, new byte[] { 1, 2 })));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Message_ends_with_the_header_block_as_published_whichever_writer_wrote_it()
    {
        var headers = HeaderBlockOf(("k", false, [1, 2, 3]));
        var expected = WireBuilder.Frame(FrameType.Message).Str("t").U64(9).I64(5).U8(0).Bytes([7]).Bytes(headers).U32(1).Build();

        var fromFrame = Encode(w => FrameWriter.Write(w, new MessageFrame("t", 9, 5, null, new byte[] { 7 }, headers)));
        var fromSpans = Encode(w => FrameWriter.WriteMessage(w, "t"u8, 9, 5, hasKey: false, default, [7], headers));

        Hex(fromFrame).ShouldBe(Hex(expected));
        Hex(fromSpans).ShouldBe(Hex(expected));
        fromSpans.Length.ShouldBe(FrameWriter.MessageFrameSize(1, false, 0, 1, headers.Length));
    }

    [Theory]
    [InlineData(1U)]
    [InlineData(2U)]
    [InlineData(0x01020304U)]
    [InlineData(uint.MaxValue)]
    public void Message_delivery_count_is_the_last_u32_whichever_writer_wrote_it(uint deliveryCount)
    {
        var headers = HeaderBlockOf(("k", true, "v"u8.ToArray()));
        var expected = WireBuilder.Frame(FrameType.Message).Str("t").U64(9).I64(5).U8(1).U16(1).Raw(0x6B).Bytes([7]).Bytes(headers).U32(deliveryCount).Build();

        var fromFrame = Encode(w => FrameWriter.Write(w, new MessageFrame("t", 9, 5, new byte[] { 0x6B }, new byte[] { 7 }, headers, deliveryCount)));
        var fromSpans = Encode(w => FrameWriter.WriteMessage(w, "t"u8, 9, 5, hasKey: true, [0x6B], [7], headers, deliveryCount));

        Hex(fromFrame).ShouldBe(Hex(expected));
        Hex(fromSpans).ShouldBe(Hex(expected));
        fromSpans.Length.ShouldBe(FrameWriter.MessageFrameSize(1, true, 1, 1, headers.Length), "MessageFrameSize counts the delivery count");
    }

    [Fact]
    public void Message_of_a_first_delivery_carries_a_delivery_count_of_1_by_default()
    {
        var fromFrame = Encode(w => FrameWriter.Write(w, new MessageFrame("t", 1, 0, null, ReadOnlyMemory<byte>.Empty)));
        var fromSpans = Encode(w => FrameWriter.WriteMessage(w, "t"u8, 1, 0, hasKey: false, default, default));

        Hex(fromFrame).ShouldEndWith("00 00 00 00 00 00 00 01");
        Hex(fromSpans).ShouldBe(Hex(fromFrame));
    }

    [Fact]
    public void Ack_with_sequence_is_request_id_flag_sequence_duplicate_then_durable()
    {
        var expected = WireBuilder.Frame(FrameType.Ack).U64(4).U8(1).U64(128).U8(1).U8(0).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new AckFrame(4, 128, Duplicate: true)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Ack_durable_flag_is_the_last_byte_after_the_duplicate_flag(bool duplicate, bool durable)
    {
        var expected = WireBuilder.Frame(FrameType.Ack).U64(4).U8(1).U64(128).U8(duplicate ? (byte)1 : (byte)0).U8(durable ? (byte)1 : (byte)0).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new AckFrame(4, 128, duplicate, durable)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Ack_without_sequence_omits_the_sequence_after_a_zero_flag()
    {
        var expected = WireBuilder.Frame(FrameType.Ack).U64(4).U8(0).U8(0).U8(0).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new AckFrame(4, null, Duplicate: false)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Sequences_up_to_the_largest_long_are_written_as_u64()
    {
        var ack = Encode(w => FrameWriter.Write(w, new AckFrame(4, long.MaxValue, Duplicate: false)));
        var message = Encode(w => FrameWriter.Write(w, new MessageFrame("t", long.MaxValue, 0, null, ReadOnlyMemory<byte>.Empty)));
        var commit = Encode(w => FrameWriter.Write(w, new CommitFrame("t", long.MaxValue)));
        var nack = Encode(w => FrameWriter.Write(w, new NackFrame("t", long.MaxValue)));

        Hex(ack).ShouldBe(Hex(WireBuilder.Frame(FrameType.Ack).U64(4).U8(1).U64(long.MaxValue).U8(0).U8(0).Build()));
        Hex(message).ShouldBe(Hex(WireBuilder.Frame(FrameType.Message).Str("t").U64(long.MaxValue).I64(0).U8(0).Bytes([]).Bytes([]).U32(1).Build()));
        Hex(commit).ShouldBe(Hex(WireBuilder.Frame(FrameType.Commit).U8(1).Str("t").U64(long.MaxValue).Build()));
        Hex(nack).ShouldBe(Hex(WireBuilder.Frame(FrameType.Nack).Str("t").U64(long.MaxValue).U32(0).Build()));
    }

    public static TheoryData<string, Action<IBufferWriter<byte>>> FramesWithANegativeSequence() => new()
    {
        { "Ack", w => FrameWriter.Write(w, new AckFrame(1, -1, Duplicate: false)) },
        { "Message", w => FrameWriter.Write(w, new MessageFrame("t", -1, 0, null, ReadOnlyMemory<byte>.Empty)) },
        { "Message from spans", w => FrameWriter.WriteMessage(w, "t"u8, long.MinValue, 0, hasKey: false, default, default) },
        { "Commit", w => FrameWriter.Write(w, new CommitFrame("t", -1)) },
        { "single Commit", w => FrameWriter.Write(w, new CommitFrame("t", -1, Single: true)) },
        { "Nack", w => FrameWriter.Write(w, new NackFrame("t", long.MinValue, 1)) },
    };

    [Theory]
    [MemberData(nameof(FramesWithANegativeSequence))]
    public void Negative_sequence_is_refused_before_a_byte_is_written_because_the_field_is_unsigned(
        string name, Action<IBufferWriter<byte>> write)
    {
        var output = new ArrayBufferWriter<byte>();

        Should.Throw<ArgumentOutOfRangeException>(() => write(output), $"{name} with a negative sequence");

        output.WrittenCount.ShouldBe(0, $"{name}: nothing of a refused frame may reach the output");
    }

    [Fact]
    public void Error_is_optional_request_id_code_then_text()
    {
        var expected = WireBuilder.Frame(FrameType.Error).U8(1).U64(5).U16(12).Str("é").Build();

        var bytes = Encode(w => FrameWriter.Write(w, new ErrorFrame(5, ErrorCode.TopicSettingsConflict, "é")));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Error_without_request_id_omits_it_after_a_zero_flag()
    {
        var expected = WireBuilder.Frame(FrameType.Error).U8(0).U16(1).Str("v9").Build();

        var bytes = Encode(w => FrameWriter.Write(w, new ErrorFrame(null, ErrorCode.UnsupportedVersion, "v9")));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void String_length_counts_utf8_bytes_not_characters()
    {
        const string topicText = "🐇ж";
        var utf8Length = Encoding.UTF8.GetByteCount(topicText);

        var bytes = Encode(w => FrameWriter.Write(w, new UnsubscribeFrame(0, topicText)));

        bytes[13..15].ShouldBe(new byte[] { 0, (byte)utf8Length }, "4 bytes for the rabbit plus 2 for the Cyrillic letter");
        bytes.Length.ShouldBe(4 + 1 + 8 + 2 + utf8Length);
    }

    private static byte[] HeaderBlockOf(params (string Key, bool IsText, byte[] Value)[] entries)
    {
        var block = new ArrayBufferWriter<byte>();
        foreach (var (key, isText, value) in entries)
        {
            HeaderBlock.WriteEntry(block, key, isText, value);
        }

        return block.WrittenSpan.ToArray();
    }
}
