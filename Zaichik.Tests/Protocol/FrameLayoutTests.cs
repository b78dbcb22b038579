using System.Text;
using Zaichik.Protocol;
using static Zaichik.Tests.Protocol.CodecTestHelpers;

namespace Zaichik.Tests.Protocol;

/// <summary>The writer's bytes match the field tables in docs/protocol.md, field by field.</summary>
public sealed class FrameLayoutTests
{
    [Fact]
    public void Hello_frame_encodes_to_the_documented_example_bytes()
    {
        var bytes = Encode(w => FrameWriter.Write(w, new HelloFrame(1)));

        Hex(bytes).ShouldBe("00 00 00 03 01 00 01");
    }

    [Fact]
    public void Publish_frame_encodes_to_the_documented_example_bytes()
    {
        var frame = new PublishFrame(7, "orders", "a1"u8.ToArray(), "hello"u8.ToArray());

        var bytes = Encode(w => FrameWriter.Write(w, frame));

        Hex(bytes).ShouldBe(
            "00 00 00 1F 03 00 00 00 00 00 00 00 07 00 06 6F 72 64 65 72 73 01 00 02 61 31 00 00 00 05 68 65 6C 6C 6F");
    }

    [Fact]
    public void Ack_frame_encodes_to_the_documented_example_bytes()
    {
        var bytes = Encode(w => FrameWriter.Write(w, new AckFrame(7, 64, Duplicate: false)));

        Hex(bytes).ShouldBe("00 00 00 13 11 00 00 00 00 00 00 00 07 01 00 00 00 00 00 00 00 40 00");
    }

    [Fact]
    public void Error_frame_encodes_to_the_documented_example_bytes()
    {
        var bytes = Encode(w => FrameWriter.Write(w, new ErrorFrame(null, ErrorCode.UnsupportedVersion, "v2")));

        Hex(bytes).ShouldBe("00 00 00 08 12 00 00 01 00 02 76 32");
    }

    [Fact]
    public void CreateTopic_fields_are_request_id_topic_retention_then_compaction_window()
    {
        var expected = WireBuilder.Frame(FrameType.CreateTopic).U64(9).Str("t").I64(60_000).I64(-2).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new CreateTopicFrame(9, "t", 60_000, -2)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Publish_without_key_writes_a_zero_flag_and_no_key_length()
    {
        var expected = WireBuilder.Frame(FrameType.Publish).U64(1).Str("t").U8(0).Bytes([0xAA]).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new PublishFrame(1, "t", null, new byte[] { 0xAA })));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Subscribe_fields_are_request_id_topic_start_position_byte_then_prefetch()
    {
        var expected = WireBuilder.Frame(FrameType.Subscribe).U64(2).Str("t").U8(1).U32(10).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new SubscribeFrame(2, "t", StartPosition.Latest, 10)));

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
    public void Bare_commit_is_a_single_zero_flag_byte_and_carries_no_offset()
    {
        var expected = WireBuilder.Frame(FrameType.Commit).U8(0).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new CommitFrame(null, 42)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Commit_with_topic_is_flag_topic_then_offset()
    {
        var expected = WireBuilder.Frame(FrameType.Commit).U8(1).Str("t").I64(500).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new CommitFrame("t", 500)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Close_is_only_its_type_byte()
    {
        var bytes = Encode(w => FrameWriter.Write(w, default(CloseFrame)));

        Hex(bytes).ShouldBe("00 00 00 01 07");
    }

    [Fact]
    public void Message_fields_are_topic_offset_timestamp_key_then_payload()
    {
        var expected = WireBuilder.Frame(FrameType.Message)
            .Str("t").I64(4096).I64(1_700_000_000_000).U8(1).U16(1).Raw(0x6B).Bytes([0x01, 0x02]).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new MessageFrame("t", 4096, 1_700_000_000_000, new byte[] { 0x6B }, new byte[] { 1, 2 })));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Ack_with_offset_is_request_id_flag_offset_then_duplicate()
    {
        var expected = WireBuilder.Frame(FrameType.Ack).U64(4).U8(1).I64(128).U8(1).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new AckFrame(4, 128, Duplicate: true)));

        Hex(bytes).ShouldBe(Hex(expected));
    }

    [Fact]
    public void Ack_without_offset_omits_the_offset_after_a_zero_flag()
    {
        var expected = WireBuilder.Frame(FrameType.Ack).U64(4).U8(0).U8(0).Build();

        var bytes = Encode(w => FrameWriter.Write(w, new AckFrame(4, null, Duplicate: false)));

        Hex(bytes).ShouldBe(Hex(expected));
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
}
