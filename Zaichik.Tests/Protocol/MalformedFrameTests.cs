using System.Buffers;
using Zaichik.Protocol;
using static Zaichik.Tests.Protocol.CodecTestHelpers;

namespace Zaichik.Tests.Protocol;

/// <summary>Input no correct peer sends is refused with the error code the connection reports before closing.</summary>
public sealed class MalformedFrameTests
{
    /// <summary>
    /// One valid frame of every type and shape, each with fields after the type byte except Close. Optional and
    /// trailing fields carry non-default values, so cutting the frame short also cuts into them.
    /// </summary>
    public static TheoryData<string, byte[]> FramesWithFields() => new()
    {
        { "Hello", Encode(w => FrameWriter.Write(w, new HelloFrame(ProtocolVersion.Current))) },
        { "Hello with a token", Encode(w => FrameWriter.Write(w, new HelloFrame(ProtocolVersion.Current, 0, "a-token-of-16-ch"))) },
        { "Ping", Encode(w => FrameWriter.Write(w, new PingFrame(42))) },
        { "Pong", Encode(w => FrameWriter.Write(w, new PongFrame(42))) },
        { "CreateTopic", Encode(w => FrameWriter.Write(w, new CreateTopicFrame(1, "t", 10, 20, Durability.Interval, 250))) },
        { "CreateTopic Memory", Encode(w => FrameWriter.Write(w, new CreateTopicFrame(1, "t", 10, 20, Durability.Memory, -1))) },
        { "CreateTopic server defaults", Encode(w => FrameWriter.Write(w, new CreateTopicFrame(1, "t", 10, 20))) },
        { "CreateTopic latest value per key", Encode(w => FrameWriter.Write(w, new CreateTopicFrame(1, "t", 10, 20, KeepLatestPerKey: true, TombstoneRetentionMs: 0x0102030405060708))) },
        { "Publish", Encode(w => FrameWriter.Write(w, new PublishFrame(1, "t", new byte[] { 1 }, new byte[] { 2, 3 }))) },
        { "Publish without key", Encode(w => FrameWriter.Write(w, new PublishFrame(1, "t", null, new byte[] { 2, 3 }))) },
        { "Subscribe durable", Encode(w => FrameWriter.Write(w, new SubscribeFrame(1, "t", StartPosition.Latest, 3, "billing"))) },
        { "Subscribe durable empty name", Encode(w => FrameWriter.Write(w, new SubscribeFrame(1, "t", StartPosition.Latest, 3, string.Empty))) },
        { "Subscribe without durable name", Encode(w => FrameWriter.Write(w, new SubscribeFrame(1, "t", StartPosition.Latest, 3))) },
        { "Subscribe from a sequence", Encode(w => FrameWriter.Write(w, new SubscribeFrame(1, "t", StartPosition.Sequence(42), 3, "billing"))) },
        { "Subscribe from a time", Encode(w => FrameWriter.Write(w, new SubscribeFrame(1, "t", StartPosition.Time(1_700_000_000_000), 3))) },
        { "Subscribe to a group", Encode(w => FrameWriter.Write(w, new SubscribeFrame(1, "t", StartPosition.Latest, 3, Group: "g", AckWaitMs: 0x01020304, MaxDeliver: 0x05060708, DeadLetterTopic: "dlq"))) },
        { "Subscribe to a group without dead letters", Encode(w => FrameWriter.Write(w, new SubscribeFrame(1, "t", StartPosition.Latest, 3, Group: "g", AckWaitMs: 1, MaxDeliver: 1))) },
        { "Unsubscribe", Encode(w => FrameWriter.Write(w, new UnsubscribeFrame(1, "t"))) },
        { "Commit bare", Encode(w => FrameWriter.Write(w, CommitFrame.All)) },
        { "Commit with topic", Encode(w => FrameWriter.Write(w, new CommitFrame("t", 5))) },
        { "Commit single", Encode(w => FrameWriter.Write(w, new CommitFrame("t", 5, Single: true))) },
        { "Nack", Encode(w => FrameWriter.Write(w, new NackFrame("t", 5, 0x01020304))) },
        { "Message", Encode(w => FrameWriter.Write(w, new MessageFrame("t", 1, 2, new byte[] { 1 }, new byte[] { 2 }))) },
        { "Message redelivered", Encode(w => FrameWriter.Write(w, new MessageFrame("t", 1, 2, null, new byte[] { 2 }, DeliveryCount: 0x01020304))) },
        { "Ack", Encode(w => FrameWriter.Write(w, new AckFrame(1, 2, true, Durable: true))) },
        { "Ack durable only", Encode(w => FrameWriter.Write(w, new AckFrame(1, 2, false, Durable: true))) },
        { "Ack without sequence", Encode(w => FrameWriter.Write(w, new AckFrame(1, null, false))) },
        { "Error", Encode(w => FrameWriter.Write(w, new ErrorFrame(1, ErrorCode.NotSubscribed, "no"))) },
        { "Error without request id", Encode(w => FrameWriter.Write(w, new ErrorFrame(null, ErrorCode.Unknown, "x"))) },
    };

    [Fact]
    public void Oversized_length_is_refused_from_the_prefix_alone_without_waiting_for_the_body()
    {
        var reader = new FrameReader(maxFrameSize: 64);
        var buffer = new ReadOnlySequence<byte>([0x00, 0x00, 0x00, 65]);

        var thrown = Should.Throw<ProtocolViolationException>(() => reader.TryRead(ref buffer, out _));

        thrown.Code.ShouldBe(ErrorCode.FrameTooLarge);
    }

    [Fact]
    public void Frame_exactly_at_the_size_limit_is_accepted()
    {
        const int bodyWithoutPayload = 1 + 8 + 3 + 1 + 4 + 8 + 4;
        var frame = WireBuilder.Frame(FrameType.Publish).U64(1).Str("t").U8(0).Bytes(new byte[64 - bodyWithoutPayload]).U64(0).Bytes([]).Build();

        var publish = (PublishFrame)ReadAndDecode(frame, maxFrameSize: 64);

        (frame.Length - 4).ShouldBe(64, "the test frame's body must sit exactly on the limit");
        publish.Payload.Length.ShouldBe(64 - bodyWithoutPayload);
    }

    [Fact]
    public void Largest_possible_declared_length_is_refused_as_too_large()
    {
        var reader = new FrameReader();
        var buffer = new ReadOnlySequence<byte>([0xFF, 0xFF, 0xFF, 0xFF, 0x03]);

        var thrown = Should.Throw<ProtocolViolationException>(() => reader.TryRead(ref buffer, out _));

        thrown.Code.ShouldBe(ErrorCode.FrameTooLarge);
    }

    [Fact]
    public void Default_limit_refuses_a_frame_one_byte_over_it()
    {
        var reader = new FrameReader();
        var buffer = new ReadOnlySequence<byte>(WireBuilder.Frame(FrameType.Publish).BuildDeclaring(ProtocolLimits.DefaultMaxFrameSize + 1));

        var thrown = Should.Throw<ProtocolViolationException>(() => reader.TryRead(ref buffer, out _));

        thrown.Code.ShouldBe(ErrorCode.FrameTooLarge);
    }

    [Fact]
    public void Zero_length_frame_is_malformed()
    {
        var reader = new FrameReader();
        var buffer = new ReadOnlySequence<byte>([0x00, 0x00, 0x00, 0x00]);

        var thrown = Should.Throw<ProtocolViolationException>(() => reader.TryRead(ref buffer, out _));

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    [Theory]
    [InlineData((byte)0x00)]
    [InlineData((byte)0x0B)]
    [InlineData((byte)0x0F)]
    [InlineData((byte)0x14)]
    [InlineData((byte)0xFF)]
    public void Unknown_frame_type_is_malformed(byte type)
    {
        var bytes = WireBuilder.Frame(type).U16(1).Build();

        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(bytes));

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    [Fact]
    public void Every_type_byte_but_the_documented_ones_is_malformed()
    {
        byte[] documented = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x10, 0x11, 0x12, 0x13];
        var accepted = new List<byte>();

        for (var type = 0; type <= byte.MaxValue; type++)
        {
            var reader = new FrameReader();
            var buffer = new ReadOnlySequence<byte>(WireBuilder.Frame((byte)type).Build());
            if (Record.Exception(() => reader.TryRead(ref buffer, out _)) is null)
            {
                accepted.Add((byte)type);
            }
        }

        Hex([.. accepted]).ShouldBe(Hex(documented), "the reader must accept exactly the frame types of docs/protocol.md");
    }

    [Fact]
    public void Type_0x0A_is_a_Nack_not_an_unknown_type()
    {
        var bytes = WireBuilder.Frame(0x0A).Str("orders").U64(3).U32(5_000).Build();

        var nack = ReadAndDecode(bytes);

        nack.ShouldBe(new NackFrame("orders", 3, 5_000));
    }

    [Theory]
    [MemberData(nameof(FramesWithFields))]
    public void Frame_whose_body_ends_inside_its_fields_is_malformed_wherever_it_is_cut(string name, byte[] frame)
    {
        var fieldBytes = frame.Length - 5;

        var codes = Enumerable.Range(1, fieldBytes)
            .Select(cut => (Record.Exception(() => ReadAndDecode(DropLastBodyBytes(frame, cut))) as ProtocolViolationException)?.Code)
            .ToList();

        codes.ShouldAllBe(
            code => code == ErrorCode.MalformedFrame,
            $"{name} cut short by each of 1..{fieldBytes} bytes must be refused as MalformedFrame");
    }

    [Theory]
    [MemberData(nameof(FramesWithFields))]
    public void Frame_with_trailing_bytes_after_its_fields_is_malformed(string name, byte[] frame)
    {
        var longer = AppendBodyBytes(frame, 0x00);

        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(longer), $"{name} with one extra byte");

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    [Fact]
    public void Close_with_a_body_is_malformed()
    {
        var bytes = WireBuilder.Frame(FrameType.Close).U8(0).Build();

        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(bytes));

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    /// <summary>Each frame has a flag byte set to 2; only 0 and 1 are defined.</summary>
    public static TheoryData<string, byte[]> FramesWithBadFlag() => new()
    {
        { "Publish key flag", WireBuilder.Frame(FrameType.Publish).U64(1).Str("t").U8(2).Bytes([]).Build() },
        { "Message key flag", WireBuilder.Frame(FrameType.Message).Str("t").U64(1).I64(2).U8(2).Bytes([]).Build() },
        { "Subscribe group flag", WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(0).I64(0).U32(1).U8(0).U8(0).U8(2).Str("g").U32(0).U32(0).U8(0).Build() },
        { "Subscribe dead-letter topic flag", WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(0).I64(0).U32(1).U8(0).U8(0).U8(1).Str("g").U32(0).U32(0).U8(2).Str("d").Build() },
        { "CreateTopic keepLatestPerKey flag", WireBuilder.Frame(FrameType.CreateTopic).U64(1).Str("t").I64(0).I64(0).U8(0).I64(0).I64(0).I64(0).U8(2).I64(0).Build() },
        { "Ack sequence flag", WireBuilder.Frame(FrameType.Ack).U64(1).U8(2).U8(0).U8(0).Build() },
        { "Ack duplicate flag", WireBuilder.Frame(FrameType.Ack).U64(1).U8(0).U8(2).U8(0).Build() },
        { "Ack durable flag", WireBuilder.Frame(FrameType.Ack).U64(1).U8(1).U64(64).U8(0).U8(2).Build() },
        { "Ack durable flag without sequence", WireBuilder.Frame(FrameType.Ack).U64(1).U8(0).U8(0).U8(2).Build() },
        { "Subscribe durable name flag", WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(0).I64(0).U32(1).U8(2).Build() },
        { "Subscribe durable name flag with a name after it", WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(0).I64(0).U32(1).U8(2).Str("d").Build() },
        { "Error request id flag", WireBuilder.Frame(FrameType.Error).U8(2).U16(0).Str("x").Build() },
    };

    [Theory]
    [MemberData(nameof(FramesWithBadFlag))]
    public void Flag_byte_other_than_0_or_1_is_malformed(string name, byte[] frame)
    {
        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(frame), name);

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    [Theory]
    [InlineData((byte)3)]
    [InlineData((byte)4)]
    [InlineData((byte)0x80)]
    [InlineData((byte)0xFF)]
    public void Undefined_commit_mode_is_malformed_even_when_a_topic_and_sequence_follow(byte mode)
    {
        var bare = WireBuilder.Frame(FrameType.Commit).U8(mode).Build();
        var scoped = WireBuilder.Frame(FrameType.Commit).U8(mode).Str("t").U64(5).Build();

        var thrownBare = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(bare));
        var thrownScoped = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(scoped));

        thrownBare.Code.ShouldBe(ErrorCode.MalformedFrame);
        thrownScoped.Code.ShouldBe(ErrorCode.MalformedFrame);
        thrownScoped.Message.ShouldContain($"Commit mode {mode}");
    }

    [Theory]
    [InlineData((byte)0, null, 0L, false)]
    [InlineData((byte)1, "t", 5L, false)]
    [InlineData((byte)2, "t", 5L, true)]
    public void Every_defined_commit_mode_decodes(byte mode, string? topic, long sequence, bool single)
    {
        var builder = WireBuilder.Frame(FrameType.Commit).U8(mode);
        var bytes = (topic is null ? builder : builder.Str(topic).U64((ulong)sequence)).Build();

        var commit = (CommitFrame)ReadAndDecode(bytes);

        commit.ShouldBe(new CommitFrame(topic, sequence, single));
    }

    [Theory]
    [InlineData((byte)1)]
    [InlineData((byte)2)]
    public void Scoped_commit_mode_without_its_topic_and_sequence_is_malformed(byte mode)
    {
        var bytes = WireBuilder.Frame(FrameType.Commit).U8(mode).Build();

        Should.Throw<ProtocolViolationException>(() => ReadAndDecode(bytes)).Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    [Fact]
    public void Bare_commit_with_a_topic_after_it_is_malformed()
    {
        var bytes = WireBuilder.Frame(FrameType.Commit).U8(0).Str("t").U64(5).Build();

        Should.Throw<ProtocolViolationException>(() => ReadAndDecode(bytes)).Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    [Theory]
    [InlineData(new byte[] { 0xC3, 0x28 })]
    [InlineData(new byte[] { 0xFF })]
    [InlineData(new byte[] { 0x80 })]
    [InlineData(new byte[] { 0xC0, 0xAF })]
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })]
    [InlineData(new byte[] { 0x61, 0xE2, 0x82 })]
    public void Invalid_utf8_in_a_topic_is_malformed(byte[] topic)
    {
        var bytes = WireBuilder.Frame(FrameType.Publish).U64(1).Utf8(topic).U8(0).Bytes([1]).Build();

        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(bytes));

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    [Fact]
    public void Invalid_utf8_is_refused_every_time_not_only_before_the_topic_cache_warms()
    {
        var reader = new FrameReader();
        var bytes = WireBuilder.Frame(FrameType.Unsubscribe).U64(1).Utf8([0x6F, 0xFF]).Build();

        var first = Record.Exception(() => reader.ReadUnsubscribe(ReadSingle(reader, bytes)));
        var second = Record.Exception(() => reader.ReadUnsubscribe(ReadSingle(reader, bytes)));

        first.ShouldBeOfType<ProtocolViolationException>().Code.ShouldBe(ErrorCode.MalformedFrame);
        second.ShouldBeOfType<ProtocolViolationException>().Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    [Fact]
    public void Invalid_utf8_in_error_text_is_malformed()
    {
        var bytes = WireBuilder.Frame(FrameType.Error).U8(0).U16(0).Utf8([0xFE, 0xFE]).Build();

        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(bytes));

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    [Theory]
    [InlineData(3U)]
    [InlineData(1000U)]
    [InlineData(uint.MaxValue)]
    public void Payload_length_pointing_past_the_frame_end_is_malformed(uint declaredPayloadLength)
    {
        var bytes = WireBuilder.Frame(FrameType.Publish).U64(1).Str("t").U8(0).U32(declaredPayloadLength).Raw(0xAA, 0xBB).Build();

        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(bytes));

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    [Fact]
    public void Key_length_pointing_past_the_frame_end_is_malformed()
    {
        var bytes = WireBuilder.Frame(FrameType.Message).Str("t").U64(1).I64(2).U8(1).U16(500).Raw(0x01).Build();

        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(bytes));

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    [Fact]
    public void String_length_pointing_past_the_frame_end_is_malformed()
    {
        var bytes = WireBuilder.Frame(FrameType.Unsubscribe).U64(1).U16(ushort.MaxValue).Raw(0x61).Build();

        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(bytes));

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    [Theory]
    [InlineData((byte)4)]
    [InlineData((byte)0x80)]
    [InlineData((byte)0xFF)]
    public void Undefined_start_position_is_malformed(byte from)
    {
        var bytes = WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(from).I64(1).U32(1).U8(0).Build();

        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(bytes));

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame);
        thrown.Message.ShouldContain($"start position {from}");
    }

    [Theory]
    [InlineData((byte)0, StartPositionKind.Retained, 0L)]
    [InlineData((byte)1, StartPositionKind.Latest, 0L)]
    [InlineData((byte)2, StartPositionKind.Sequence, 42L)]
    [InlineData((byte)3, StartPositionKind.Time, 1_795_773_600_000L)]
    public void Every_defined_start_position_byte_decodes_with_its_position(byte wire, StartPositionKind expected, long position)
    {
        var bytes = WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(wire).I64(position).U32(1).U8(0).U8(0).U8(0).U32(0).U32(0).U8(0).Build();

        var subscribe = (SubscribeFrame)ReadAndDecode(bytes);

        subscribe.From.Kind.ShouldBe(expected);
        subscribe.From.Value.ShouldBe(position);
    }

    [Theory]
    [InlineData(0, AckPolicy.Explicit)]
    [InlineData(1, AckPolicy.None)]
    public void Every_defined_ack_policy_byte_decodes(byte wire, AckPolicy expected)
    {
        var bytes = WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(1).I64(0).U32(1).U8(0).U8(wire).U8(0).U32(0).U32(0).U8(0).Build();

        ((SubscribeFrame)ReadAndDecode(bytes)).AckPolicy.ShouldBe(expected);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(255)]
    public void An_undefined_ack_policy_is_malformed(byte wire)
    {
        var bytes = WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(1).I64(0).U32(1).U8(0).U8(wire).U8(0).U32(0).U32(0).U8(0).Build();

        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(bytes));

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame);
        thrown.Message.ShouldContain($"ack policy {wire}");
    }

    [Fact]
    public void A_version_5_subscribe_without_its_ack_policy_is_malformed()
    {
        var bytes = WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(1).I64(0).U32(1).U8(0).Build();

        Should.Throw<ProtocolViolationException>(() => ReadAndDecode(bytes)).Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    /// <summary>Frames as a version 6 peer writes them: without the fields version 7 appended, or cut inside them.</summary>
    public static TheoryData<string, byte[]> FramesMissingVersion7Fields() => new()
    {
        { "Subscribe ending at its ack policy", WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(1).I64(0).U32(1).U8(0).U8(0).Build() },
        { "Subscribe ending at its group flag", WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(1).I64(0).U32(1).U8(0).U8(0).U8(0).Build() },
        { "Subscribe ending at its ack wait", WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(1).I64(0).U32(1).U8(0).U8(0).U8(1).Str("g").U32(0).Build() },
        { "Subscribe ending at its max deliver", WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(1).I64(0).U32(1).U8(0).U8(0).U8(0).U32(0).U32(0).Build() },
        { "Subscribe with a dead-letter flag but no topic", WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(1).I64(0).U32(1).U8(0).U8(0).U8(0).U32(0).U32(0).U8(1).Build() },
        { "CreateTopic ending at its limits", WireBuilder.Frame(FrameType.CreateTopic).U64(1).Str("t").I64(0).I64(0).U8(0).I64(0).I64(0).I64(0).Build() },
        { "CreateTopic ending at keepLatestPerKey", WireBuilder.Frame(FrameType.CreateTopic).U64(1).Str("t").I64(0).I64(0).U8(0).I64(0).I64(0).I64(0).U8(1).Build() },
        { "Message ending at its headers", WireBuilder.Frame(FrameType.Message).Str("t").U64(1).I64(0).U8(0).Bytes([1]).Bytes([]).Build() },
        { "Message with half a delivery count", WireBuilder.Frame(FrameType.Message).Str("t").U64(1).I64(0).U8(0).Bytes([1]).Bytes([]).Raw(0, 1).Build() },
        { "Nack without its delay", WireBuilder.Frame(FrameType.Nack).Str("t").U64(1).Build() },
        { "Nack without its sequence", WireBuilder.Frame(FrameType.Nack).Str("t").Build() },
    };

    [Theory]
    [MemberData(nameof(FramesMissingVersion7Fields))]
    public void Frame_missing_a_version_7_field_is_malformed(string name, byte[] frame)
    {
        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(frame), name);

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame, name);
    }

    [Theory]
    [InlineData((byte)0, null)]
    [InlineData((byte)1, "t")]
    public void Version_6_commit_reads_the_same_in_version_7(byte flag, string? topic)
    {
        // Version 6's flag byte: 0x00 bare, 0x01 topic and sequence follow; they are modes 0 and 1 now.
        var builder = WireBuilder.Frame(FrameType.Commit).U8(flag);
        var bytes = (topic is null ? builder : builder.Str(topic).U64(9)).Build();

        var commit = (CommitFrame)ReadAndDecode(bytes);

        commit.ShouldBe(topic is null ? CommitFrame.All : new CommitFrame(topic, 9));
        commit.Single.ShouldBeFalse();
    }

    /// <summary>Subscribes that end at <c>from</c> or inside <c>position</c>, as a version 3 client's might.</summary>
    public static TheoryData<string, byte[]> SubscribesEndingBeforePosition() => new()
    {
        { "right after from", WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(2).Build() },
        { "inside position", WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(2).Raw(0, 0, 0, 0).Build() },
        { "version 3 layout, no position", WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(1).U32(3).U8(0).Build() },
    };

    [Theory]
    [MemberData(nameof(SubscribesEndingBeforePosition))]
    public void Subscribe_ending_before_its_position_is_malformed(string name, byte[] frame)
    {
        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(frame), name);

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame, name);
    }

    /// <summary>Each frame carries the u64 sequence 2^63, one above the largest a long (and so a topic) holds.</summary>
    public static TheoryData<string, byte[]> FramesWithASequenceAboveTheLargestLong() => new()
    {
        { "Ack", WireBuilder.Frame(FrameType.Ack).U64(1).U8(1).U64(1UL << 63).U8(0).U8(0).Build() },
        { "Message", WireBuilder.Frame(FrameType.Message).Str("t").U64(1UL << 63).I64(0).U8(0).Bytes([]).Bytes([]).U32(1).Build() },
        { "Commit", WireBuilder.Frame(FrameType.Commit).U8(1).Str("t").U64(ulong.MaxValue).Build() },
        { "single Commit", WireBuilder.Frame(FrameType.Commit).U8(2).Str("t").U64(1UL << 63).Build() },
        { "Nack", WireBuilder.Frame(FrameType.Nack).Str("t").U64(1UL << 63).U32(0).Build() },
    };

    [Theory]
    [MemberData(nameof(FramesWithASequenceAboveTheLargestLong))]
    public void Sequence_above_the_largest_long_is_malformed_not_read_as_negative(string name, byte[] frame)
    {
        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(frame), name);

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame, name);
    }

    [Theory]
    [InlineData((byte)4)]
    [InlineData((byte)0x80)]
    [InlineData((byte)0xFF)]
    public void Undefined_durability_is_malformed(byte durability)
    {
        var bytes = WireBuilder.Frame(FrameType.CreateTopic).U64(1).Str("t").I64(10).I64(20).U8(durability).I64(0).I64(0).I64(0).U8(0).I64(0).Build();

        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(bytes));

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    [Theory]
    [InlineData((byte)0, Durability.ServerDefault)]
    [InlineData((byte)1, Durability.Always)]
    [InlineData((byte)2, Durability.Interval)]
    [InlineData((byte)3, Durability.Memory)]
    public void Every_defined_durability_byte_decodes(byte wire, Durability expected)
    {
        var bytes = WireBuilder.Frame(FrameType.CreateTopic).U64(1).Str("t").I64(10).I64(20).U8(wire).I64(100).I64(0).I64(0).U8(0).I64(0).Build();

        var createTopic = (CreateTopicFrame)ReadAndDecode(bytes);

        createTopic.ShouldBe(new CreateTopicFrame(1, "t", 10, 20, expected, 100));
    }

    /// <summary>Frames that end where version 1 ended them, or partway through a field version 2 appended (in version 4's layout otherwise).</summary>
    public static TheoryData<string, byte[]> FramesMissingVersion2Fields() => new()
    {
        { "CreateTopic without durability and commit interval", WireBuilder.Frame(FrameType.CreateTopic).U64(1).Str("t").I64(10).I64(20).Build() },
        { "CreateTopic with durability but without commit interval", WireBuilder.Frame(FrameType.CreateTopic).U64(1).Str("t").I64(10).I64(20).U8(1).Build() },
        { "Subscribe without durable name flag", WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(1).I64(0).U32(3).Build() },
        { "Subscribe with durable name flag but no name", WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(1).I64(0).U32(3).U8(1).Build() },
        { "Ack without durable flag", WireBuilder.Frame(FrameType.Ack).U64(1).U8(1).U64(64).U8(0).Build() },
        { "Ack without sequence and without durable flag", WireBuilder.Frame(FrameType.Ack).U64(1).U8(0).U8(0).Build() },
    };

    [Theory]
    [MemberData(nameof(FramesMissingVersion2Fields))]
    public void Frame_missing_a_version_2_field_is_malformed(string name, byte[] frame)
    {
        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(frame), name);

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    [Fact]
    public void Durable_name_length_pointing_past_the_frame_end_is_malformed()
    {
        var bytes = WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(0).I64(0).U32(1).U8(1).U16(8).Raw(0x64).Build();

        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(bytes));

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    [Fact]
    public void Invalid_utf8_in_a_durable_name_is_malformed()
    {
        var bytes = WireBuilder.Frame(FrameType.Subscribe).U64(1).Str("t").U8(0).I64(0).U32(1).U8(1).Utf8([0x64, 0xFF]).Build();

        var thrown = Should.Throw<ProtocolViolationException>(() => ReadAndDecode(bytes));

        thrown.Code.ShouldBe(ErrorCode.MalformedFrame);
    }
}
