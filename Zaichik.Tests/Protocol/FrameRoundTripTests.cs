using Zaichik.Protocol;
using static Zaichik.Tests.Protocol.CodecTestHelpers;

namespace Zaichik.Tests.Protocol;

public sealed class FrameRoundTripTests
{
    [Theory]
    [InlineData((ushort)0)]
    [InlineData(ProtocolVersion.Minimum)]
    [InlineData(ProtocolVersion.Current)]
    [InlineData(ushort.MaxValue)]
    public async Task Hello_round_trips_its_version(ushort version)
    {
        var sent = new HelloFrame(version);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadHello(f));

        received.ShouldBe(sent);
    }

    [Theory]
    [InlineData(0UL, 0L, 0L)]
    [InlineData(ulong.MaxValue, long.MaxValue, long.MaxValue)]
    [InlineData(42UL, -1L, long.MinValue)]
    [InlineData(7UL, 86_400_000L, 250L)]
    public async Task CreateTopic_round_trips_request_id_name_and_settings(ulong requestId, long retentionTtlMs, long compactionWindowMs)
    {
        var sent = new CreateTopicFrame(requestId, "orders.eu-west_1", retentionTtlMs, compactionWindowMs);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadCreateTopic(f));

        received.ShouldBe(sent);
        received.Durability.ShouldBe(Durability.ServerDefault, "a CreateTopic that does not choose durability asks for the server's");
        received.CommitIntervalMs.ShouldBe(0, "a CreateTopic that does not choose a commit interval asks for the server's");
    }

    [Theory]
    [InlineData(Durability.ServerDefault, 0L)]
    [InlineData(Durability.Always, 0L)]
    [InlineData(Durability.Interval, 0L)]
    [InlineData(Durability.Interval, 250L)]
    [InlineData(Durability.Interval, long.MaxValue)]
    [InlineData(Durability.Memory, 0L)]
    [InlineData(Durability.Always, 1000L)]
    [InlineData(Durability.Memory, -1L)]
    [InlineData(Durability.ServerDefault, long.MinValue)]
    public async Task CreateTopic_round_trips_durability_and_commit_interval(Durability durability, long commitIntervalMs)
    {
        var sent = new CreateTopicFrame(3, "orders", 60_000, 500, durability, commitIntervalMs);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadCreateTopic(f));

        received.ShouldBe(sent);
        received.Durability.ShouldBe(durability);
        received.CommitIntervalMs.ShouldBe(commitIntervalMs);
    }

    [Theory]
    [InlineData(false, 0L)]
    [InlineData(true, 0L)]
    [InlineData(true, 86_400_000L)]
    [InlineData(true, long.MaxValue)]
    [InlineData(false, -1L)]
    [InlineData(false, long.MinValue)]
    public async Task CreateTopic_round_trips_keep_latest_per_key_and_tombstone_retention(bool keepLatestPerKey, long tombstoneRetentionMs)
    {
        // The codec passes a negative or a keepLatestPerKey-less retention on unchanged: the server answers InvalidArgument.
        var sent = new CreateTopicFrame(3, "prices", 60_000, 0, Durability.Memory, 0, 10, 1 << 20, keepLatestPerKey, tombstoneRetentionMs);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadCreateTopic(f));

        received.ShouldBe(sent);
        received.KeepLatestPerKey.ShouldBe(keepLatestPerKey);
        received.TombstoneRetentionMs.ShouldBe(tombstoneRetentionMs);
        received.MaxMessages.ShouldBe(10, "the fields before the compaction settings keep their place");
        received.MaxBytes.ShouldBe(1 << 20);
    }

    [Fact]
    public async Task CreateTopic_without_compaction_settings_decodes_with_compaction_off()
    {
        var sent = new CreateTopicFrame(3, "prices", 60_000, 0);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadCreateTopic(f));

        received.KeepLatestPerKey.ShouldBeFalse();
        received.TombstoneRetentionMs.ShouldBe(0);
    }

    [Fact]
    public async Task Publish_round_trips_request_id_topic_key_and_payload()
    {
        byte[] key = [0x00, 0xFF, 0x10];
        byte[] payload = [1, 2, 3, 4, 5];
        var sent = new PublishFrame(ulong.MaxValue, "prices", key, payload);

        var received = await RoundTripAsync(
            w => FrameWriter.Write(w, sent),
            (r, f) => { var p = r.ReadPublish(f); return (p.RequestId, p.Topic, Key: p.Key?.ToArray(), Payload: p.Payload.ToArray()); });

        received.RequestId.ShouldBe(ulong.MaxValue);
        received.Topic.ShouldBe("prices");
        received.Key.ShouldBe(key);
        received.Payload.ShouldBe(payload);
    }

    [Fact]
    public async Task Publish_without_a_key_decodes_with_a_null_key()
    {
        var sent = new PublishFrame(1, "prices", null, new byte[] { 9 });

        var key = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadPublish(f).Key?.ToArray());

        key.ShouldBeNull("a Publish written without a key must not gain one on the way");
    }

    [Fact]
    public async Task Publish_with_an_empty_key_decodes_with_an_empty_key_not_a_null_one()
    {
        var sent = new PublishFrame(1, "prices", ReadOnlyMemory<byte>.Empty, new byte[] { 9 });

        var key = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadPublish(f).Key?.ToArray());

        key.ShouldNotBeNull("an empty key is a key: compaction treats it differently from no key");
        key.ShouldBeEmpty();
    }

    [Fact]
    public async Task Publish_with_an_empty_payload_round_trips()
    {
        var sent = new PublishFrame(3, "t", new byte[] { 1 }, ReadOnlyMemory<byte>.Empty);

        var received = await RoundTripAsync(
            w => FrameWriter.Write(w, sent),
            (r, f) => { var p = r.ReadPublish(f); return (Key: p.Key?.ToArray(), Payload: p.Payload.ToArray()); });

        received.Key.ShouldBe([1]);
        received.Payload.ShouldBeEmpty();
    }

    [Theory]
    [InlineData(StartPositionKind.Retained, 0L, 1U)]
    [InlineData(StartPositionKind.Latest, 0L, 100U)]
    [InlineData(StartPositionKind.Latest, 0L, uint.MaxValue)]
    [InlineData(StartPositionKind.Retained, 0L, 0U)]
    [InlineData(StartPositionKind.Sequence, 1L, 1U)]
    [InlineData(StartPositionKind.Sequence, 42L, 10U)]
    [InlineData(StartPositionKind.Sequence, long.MaxValue, 1U)]
    [InlineData(StartPositionKind.Time, 0L, 1U)]
    [InlineData(StartPositionKind.Time, 1_795_773_600_000L, 500U)]
    [InlineData(StartPositionKind.Time, long.MaxValue, 1U)]
    public async Task Subscribe_round_trips_every_kind_of_start_position_and_the_prefetch(StartPositionKind kind, long value, uint prefetch)
    {
        var sent = new SubscribeFrame(ulong.MaxValue, "sensor-17", Start(kind, value), prefetch);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadSubscribe(f));

        received.ShouldBe(sent);
        received.From.Kind.ShouldBe(kind);
        received.From.Value.ShouldBe(value);
        received.DurableName.ShouldBeNull("an ordinary subscription must not become a durable consumer on the way");
        received.Group.ShouldBeNull("an ordinary subscription must not join a consumer group on the way");
        received.DeadLetterTopic.ShouldBeNull();
    }

    [Theory]
    [InlineData("invoicing", 0U, 0U, null)]
    [InlineData("invoicing", 60_000U, 5U, "orders.dead")]
    [InlineData("g", uint.MaxValue, uint.MaxValue, "")]
    [InlineData("", 1U, 1U, "dlq")]
    [InlineData("группа-🐇", 30_000U, 0U, "мёртвые")]
    public async Task Subscribe_round_trips_the_group_its_ack_wait_max_deliver_and_dead_letter_topic(
        string group, uint ackWaitMs, uint maxDeliver, string? deadLetterTopic)
    {
        var sent = new SubscribeFrame(8, "orders", StartPosition.Sequence(7), 10, null, AckPolicy.Explicit, group, ackWaitMs, maxDeliver, deadLetterTopic);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadSubscribe(f));

        received.ShouldBe(sent);
        received.Group.ShouldBe(group, "a present empty group name is a name, not an absent one");
        received.AckWaitMs.ShouldBe(ackWaitMs);
        received.MaxDeliver.ShouldBe(maxDeliver);
        received.DeadLetterTopic.ShouldBe(deadLetterTopic);
        received.DurableName.ShouldBeNull();
    }

    [Fact]
    public async Task Subscribe_with_both_a_durable_name_and_a_group_decodes_both_so_the_server_can_refuse_it()
    {
        var sent = new SubscribeFrame(9, "orders", StartPosition.Retained, 1, "billing", AckPolicy.None, "invoicing", 1, 2, "orders.dead");

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadSubscribe(f));

        received.ShouldBe(sent);
        received.DurableName.ShouldBe("billing");
        received.Group.ShouldBe("invoicing");
        received.AckPolicy.ShouldBe(AckPolicy.None);
    }

    [Theory]
    [InlineData(StartPositionKind.Retained, 5L)]
    [InlineData(StartPositionKind.Latest, -1L)]
    [InlineData(StartPositionKind.Sequence, 0L)]
    [InlineData(StartPositionKind.Sequence, long.MinValue)]
    [InlineData(StartPositionKind.Time, -1L)]
    public async Task Subscribe_decodes_a_position_the_factories_refuse_unchanged_so_the_server_can_answer_it(StartPositionKind kind, long value)
    {
        // No correct client sends these; the codec passes them on and the server answers InvalidArgument (or ignores them).
        var sent = new SubscribeFrame(1, "sensor-17", new StartPosition(kind, value), 1);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadSubscribe(f));

        received.From.Kind.ShouldBe(kind);
        received.From.Value.ShouldBe(value, "the codec does not validate the position");
    }

    [Theory]
    [InlineData("billing", StartPositionKind.Retained, 0L, 1U)]
    [InlineData("a", StartPositionKind.Latest, 0L, 100U)]
    [InlineData("audit.eu-west_1", StartPositionKind.Sequence, 7L, uint.MaxValue)]
    [InlineData("0123456789012345678901234567890123456789012345678901234567890123", StartPositionKind.Time, 1_700_000_000_000L, 10U)]
    [InlineData("потребитель-🐇", StartPositionKind.Retained, 0L, 1U)]
    public async Task Subscribe_round_trips_a_durable_name(string durableName, StartPositionKind kind, long value, uint prefetch)
    {
        var sent = new SubscribeFrame(17, "sensor-17", Start(kind, value), prefetch, durableName);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadSubscribe(f));

        received.ShouldBe(sent);
        received.DurableName.ShouldBe(durableName);
    }

    [Fact]
    public async Task Subscribe_with_an_empty_durable_name_decodes_with_an_empty_name_not_a_null_one()
    {
        var sent = new SubscribeFrame(1, "sensor-17", StartPosition.Retained, 1, string.Empty);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadSubscribe(f));

        received.DurableName.ShouldNotBeNull("the flag byte, not the string length, says whether a durable name is present");
        received.DurableName.ShouldBeEmpty();
        received.ShouldBe(sent);
    }

    [Fact]
    public async Task Unsubscribe_round_trips_request_id_and_topic()
    {
        var sent = new UnsubscribeFrame(ulong.MaxValue, "sensor-17");

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadUnsubscribe(f));

        received.ShouldBe(sent);
    }

    [Fact]
    public async Task Bare_commit_round_trips_as_a_bare_commit()
    {
        var received = await RoundTripAsync(w => FrameWriter.Write(w, CommitFrame.All), (r, f) => r.ReadCommit(f));

        received.Topic.ShouldBeNull("a bare Commit acknowledges the whole connection and must not name a topic");
        received.ShouldBe(CommitFrame.All);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(1L)]
    [InlineData(long.MaxValue)]
    public async Task Commit_with_topic_round_trips_topic_and_sequence(long sequence)
    {
        var sent = new CommitFrame("orders", sequence);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadCommit(f));

        received.ShouldBe(sent);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(1L)]
    [InlineData(long.MaxValue)]
    public async Task Single_commit_round_trips_as_a_single_commit_of_that_sequence(long sequence)
    {
        var sent = new CommitFrame("orders", sequence, Single: true);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadCommit(f));

        received.ShouldBe(sent);
        received.Single.ShouldBeTrue("mode 2 must not come back as a commit of everything up to the sequence");
    }

    [Fact]
    public async Task Commit_up_to_a_sequence_does_not_come_back_single()
    {
        var received = await RoundTripAsync(w => FrameWriter.Write(w, new CommitFrame("orders", 5)), (r, f) => r.ReadCommit(f));

        received.Single.ShouldBeFalse();
        received.Topic.ShouldBe("orders");
        received.Sequence.ShouldBe(5);
    }

    [Theory]
    [InlineData("orders", 3L, 5_000U)]
    [InlineData("orders", 1L, 0U)]
    [InlineData("", 0L, uint.MaxValue)]
    [InlineData("тема-🐇", long.MaxValue, 1U)]
    public async Task Nack_round_trips_topic_sequence_and_delay(string topic, long sequence, uint delayMs)
    {
        var sent = new NackFrame(topic, sequence, delayMs);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadNack(f));

        received.ShouldBe(sent);
    }

    [Fact]
    public async Task Commit_with_an_empty_topic_is_not_mistaken_for_a_bare_commit()
    {
        var sent = new CommitFrame(string.Empty, 12);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadCommit(f));

        received.Topic.ShouldNotBeNull("the flag byte, not the string length, says whether a topic is present");
        received.ShouldBe(sent);
    }

    [Fact]
    public async Task Close_round_trips_with_an_empty_body()
    {
        var received = await RoundTripAsync(
            w => FrameWriter.Write(w, default(CloseFrame)),
            (r, f) => (Frame: r.ReadClose(f), BodyLength: f.Body.Length));

        received.Frame.ShouldBe(default(CloseFrame));
        received.BodyLength.ShouldBe(0, "Close has no fields");
    }

    [Theory]
    [InlineData(true, new byte[] { 0x6B }, new byte[] { 0x70, 0x61, 0x79 })]
    [InlineData(true, new byte[0], new byte[] { 0x70 })]
    [InlineData(false, new byte[0], new byte[] { 0x70 })]
    [InlineData(true, new byte[] { 0x6B }, new byte[0])]
    [InlineData(false, new byte[0], new byte[0])]
    public async Task Message_round_trips_every_field(bool hasKey, byte[] key, byte[] payload)
    {
        var sent = new MessageFrame("prices", long.MaxValue, -1_700_000_000_000, hasKey ? key : (ReadOnlyMemory<byte>?)null, payload);

        var received = await RoundTripAsync(
            w => FrameWriter.Write(w, sent),
            (r, f) => { var m = r.ReadMessage(f); return (m.Topic, m.Sequence, m.TimestampMs, Key: m.Key?.ToArray(), Payload: m.Payload.ToArray()); });

        received.Topic.ShouldBe("prices");
        received.Sequence.ShouldBe(long.MaxValue);
        received.TimestampMs.ShouldBe(-1_700_000_000_000);
        if (hasKey)
        {
            received.Key.ShouldBe(key);
        }
        else
        {
            received.Key.ShouldBeNull();
        }

        received.Payload.ShouldBe(payload);
    }

    [Theory]
    [InlineData(0U)]
    [InlineData(1U)]
    [InlineData(2U)]
    [InlineData(uint.MaxValue)]
    public async Task Message_round_trips_its_delivery_count(uint deliveryCount)
    {
        var sent = new MessageFrame("prices", 12, 1_700_000_000_000, null, new byte[] { 1 }, DeliveryCount: deliveryCount);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadMessage(f).DeliveryCount);

        received.ShouldBe(deliveryCount);
    }

    [Fact]
    public async Task Message_written_from_spans_round_trips_its_delivery_count()
    {
        var received = await RoundTripAsync(
            w => FrameWriter.WriteMessage(w, "prices"u8, 12, 5, hasKey: false, default, [1, 2], default, deliveryCount: 3),
            (r, f) => { var m = r.ReadMessage(f); return (m.Sequence, m.DeliveryCount, Payload: m.Payload.ToArray()); });

        received.Sequence.ShouldBe(12);
        received.DeliveryCount.ShouldBe(3U);
        received.Payload.ShouldBe(new byte[] { 1, 2 });
    }

    [Theory]
    [InlineData(0UL, null, false, false)]
    [InlineData(ulong.MaxValue, 0L, false, false)]
    [InlineData(ulong.MaxValue, 0L, false, true)]
    [InlineData(5UL, long.MaxValue, true, false)]
    [InlineData(5UL, long.MaxValue, true, true)]
    [InlineData(5UL, 1L, false, true)]
    [InlineData(9UL, null, true, false)]
    [InlineData(9UL, null, false, true)]
    public async Task Ack_round_trips_sequence_present_or_absent_duplicate_and_durable_flags(ulong requestId, long? sequence, bool duplicate, bool durable)
    {
        var sent = new AckFrame(requestId, sequence, duplicate, durable);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadAck(f));

        received.ShouldBe(sent);
        received.Durable.ShouldBe(durable);
        received.Duplicate.ShouldBe(duplicate);
    }

    [Theory]
    [InlineData(ulong.MaxValue, ErrorCode.TopicSettingsConflict, "topic 'orders' exists with retention 60000 ms, compaction 0 ms, durability Interval every 100 ms")]
    [InlineData(null, ErrorCode.MalformedFrame, "")]
    [InlineData(0UL, ErrorCode.Unknown, "тема «заказы» не найдена 🐇")]
    public async Task Error_round_trips_request_id_code_and_unicode_text(ulong? requestId, ErrorCode code, string text)
    {
        var sent = new ErrorFrame(requestId, code, text);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadError(f));

        received.ShouldBe(sent);
    }

    [Fact]
    public async Task Error_with_an_unassigned_code_decodes_to_its_number_so_newer_servers_stay_readable()
    {
        var sent = new ErrorFrame(1, (ErrorCode)999, "from the future");

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadError(f));

        ((ushort)received.Code).ShouldBe((ushort)999);
    }

    [Fact]
    public async Task Ack_of_a_Subscribe_round_trips_its_start_sequence()
    {
        var sent = new AckFrame(2, 43, Duplicate: false);

        var received = await RoundTripAsync(w => FrameWriter.Write(w, sent), (r, f) => r.ReadAck(f));

        received.Sequence.ShouldBe(43, "the Ack of a Subscribe carries the sequence the subscription starts at");
    }

    [Fact]
    public void Decoding_a_frame_as_another_type_is_a_programming_error()
    {
        var reader = new FrameReader();
        var frame = ReadSingle(reader, Encode(w => FrameWriter.Write(w, new HelloFrame(1))));

        Should.Throw<InvalidOperationException>(() => reader.ReadAck(frame));
    }

    [Fact]
    public void Reader_refuses_a_maximum_frame_size_too_small_for_any_request()
    {
        Should.Throw<ArgumentOutOfRangeException>(() => new FrameReader(maxFrameSize: 15));
    }

    /// <summary>The position a client builds for this kind and value, through the public members.</summary>
    private static StartPosition Start(StartPositionKind kind, long value) => kind switch
    {
        StartPositionKind.Retained => StartPosition.Retained,
        StartPositionKind.Latest => StartPosition.Latest,
        StartPositionKind.Sequence => StartPosition.Sequence(value),
        _ => StartPosition.Time(value),
    };
}
