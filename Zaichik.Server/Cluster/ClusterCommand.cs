using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Zaichik.Protocol;
using Zaichik.Server.Storage;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Cluster;

/// <summary>The kinds of Raft log entries the broker writes. The first byte of every entry.</summary>
internal enum ClusterCommandKind : byte
{
    /// <summary>One message for a topic, stamped by the leader (an item of a <see cref="PublishBatch"/>).</summary>
    Publish = 1,
    /// <summary>A topic with its settings.</summary>
    CreateTopic = 2,
    /// <summary>A durable consumer's position.</summary>
    ConsumerCommit = 3,
    /// <summary>The publishes of one client read, in order: one entry, one replication round, for all of them.</summary>
    PublishBatch = 4,
    /// <summary>A consumer group's stored state (<see cref="GroupSnapshot"/>), as the leader's group last had it.</summary>
    GroupState = 5,
}

/// <summary>
/// One replicated operation, decoded from a Raft log entry. Every node applies the same entries in the same order, and
/// everything an entry's outcome depends on is in the entry (the leader's timestamp, the producer stamp), so every
/// node's topics end with the same sequences, the same key windows and the same consumer positions.
/// </summary>
internal readonly record struct ClusterCommand(
    ClusterCommandKind Kind,
    string Topic,
    long TimestampMs = 0,
    ReadOnlyMemory<byte>? Key = null,
    ReadOnlyMemory<byte> Payload = default,
    ReadOnlyMemory<byte> Headers = default,
    ProducerStamp Producer = default,
    TopicSettings? Settings = null,
    string? Consumer = null,
    long Sequence = 0,
    GroupSnapshot? Group = null)
{
    /// <summary>Version byte after the kind: a node refuses entries of a format it does not know rather than misread them.</summary>
    private const byte Format = 1;

    /// <summary>The size of one publish inside a <see cref="ClusterCommandKind.PublishBatch"/>.</summary>
    public static int BatchItemSize(string topic, ReadOnlyMemory<byte>? key, int payloadLength, int headersLength) =>
        2 + Encoding.UTF8.GetByteCount(topic) + 8 + 8 + 8 + 1 + 4 + (key?.Length ?? 0) + 4 + headersLength + 4 + payloadLength;

    /// <summary>Starts a batch in <paramref name="buffer"/>: its header and a count, which <see cref="EndBatch"/> fills in.</summary>
    public static void BeginBatch(System.Buffers.ArrayBufferWriter<byte> buffer)
    {
        var span = buffer.GetSpan(6);
        var writer = new Writer(span);
        writer.Header(ClusterCommandKind.PublishBatch);
        writer.Int32(0);
        buffer.Advance(6);
    }

    /// <summary>Appends one publish to a batch begun with <see cref="BeginBatch"/>.</summary>
    public static void AddToBatch(
        System.Buffers.ArrayBufferWriter<byte> buffer, string topic, long timestampMs, ReadOnlyMemory<byte>? key, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> headers, ProducerStamp producer)
    {
        var size = BatchItemSize(topic, key, payload.Length, headers.Length);
        var writer = new Writer(buffer.GetSpan(size));
        writer.String(topic);
        writer.Int64(timestampMs);
        writer.UInt64(producer.ProducerId);
        writer.UInt64(producer.Sequence);
        writer.Byte(key.HasValue ? (byte)1 : (byte)0);
        writer.Bytes(key.HasValue ? key.Value.Span : default);
        writer.Bytes(headers);
        writer.Bytes(payload);
        buffer.Advance(size);
    }

    /// <summary>Writes the batch's count and returns the entry.</summary>
    public static byte[] EndBatch(System.Buffers.ArrayBufferWriter<byte> buffer, int count)
    {
        var entry = buffer.WrittenSpan.ToArray();
        BinaryPrimitives.WriteInt32LittleEndian(entry.AsSpan(2), count);
        return entry;
    }

    /// <summary>The publishes of a <see cref="ClusterCommandKind.PublishBatch"/> entry, in order; theirs point into <paramref name="entry"/>.</summary>
    public static List<ClusterCommand> DecodeBatch(ReadOnlyMemory<byte> entry)
    {
        var reader = new Reader(entry);
        reader.Byte();
        reader.Byte();
        var count = reader.Int32();
        if (count < 0 || count > entry.Length)
        {
            throw new InvalidDataException($"cluster log batch of {count} publishes in {entry.Length} bytes");
        }

        var publishes = new List<ClusterCommand>(count);
        for (var i = 0; i < count; i++)
        {
            var topic = reader.String();
            var timestampMs = reader.Int64();
            var producer = new ProducerStamp(reader.UInt64(), reader.UInt64());
            var hasKey = reader.Byte() != 0;
            var key = reader.Bytes();
            var headers = reader.Bytes();
            var payload = reader.Bytes();
            // Typed: a bare `null` here would become an empty ReadOnlyMemory (through its conversion from a null array),
            // that is a message keyed "", which the key window drops as a duplicate of the previous unkeyed one.
            publishes.Add(new ClusterCommand(ClusterCommandKind.Publish, topic, timestampMs, hasKey ? key : (ReadOnlyMemory<byte>?)null, payload, headers, producer));
        }

        return publishes;
    }

    /// <summary>The kind of an entry, from its first byte.</summary>
    public static ClusterCommandKind KindOf(ReadOnlyMemory<byte> entry) => entry.IsEmpty ? 0 : (ClusterCommandKind)entry.Span[0];

    public static byte[] EncodeCreateTopic(string topic, TopicSettings settings)
    {
        var buffer = new byte[2 + 2 + Encoding.UTF8.GetByteCount(topic) + (7 * 8) + 1];
        var writer = new Writer(buffer);
        writer.Header(ClusterCommandKind.CreateTopic);
        writer.String(topic);
        writer.Int64(settings.RetentionTtlMs);
        writer.Int64(settings.CompactionWindowMs);
        writer.Int64((long)settings.Durability);
        writer.Int64(settings.CommitIntervalMs);
        writer.Int64(settings.MaxMessages);
        writer.Int64(settings.MaxBytes);
        writer.Byte(settings.KeepLatestPerKey ? (byte)1 : (byte)0);
        writer.Int64(settings.TombstoneRetentionMs);
        return buffer;
    }

    public static byte[] EncodeConsumerCommit(string topic, string consumer, long sequence)
    {
        var buffer = new byte[2 + 2 + Encoding.UTF8.GetByteCount(topic) + 2 + Encoding.UTF8.GetByteCount(consumer) + 8];
        var writer = new Writer(buffer);
        writer.Header(ClusterCommandKind.ConsumerCommit);
        writer.String(topic);
        writer.String(consumer);
        writer.Int64(sequence);
        return buffer;
    }

    public static byte[] EncodeGroupState(string topic, string group, GroupSnapshot state)
    {
        var stored = GroupStateStore.Serialize(state);
        var buffer = new byte[2 + 2 + Encoding.UTF8.GetByteCount(topic) + 2 + Encoding.UTF8.GetByteCount(group) + 4 + stored.Length];
        var writer = new Writer(buffer);
        writer.Header(ClusterCommandKind.GroupState);
        writer.String(topic);
        writer.String(group);
        writer.Bytes(stored);
        return buffer;
    }

    /// <summary>Decodes an entry; the key, payload and headers point into <paramref name="entry"/>.</summary>
    /// <exception cref="InvalidDataException">The entry is not one this broker writes.</exception>
    public static ClusterCommand Decode(ReadOnlyMemory<byte> entry)
    {
        var reader = new Reader(entry);
        var kind = (ClusterCommandKind)reader.Byte();
        var format = reader.Byte();
        if (format != Format)
        {
            throw new InvalidDataException($"cluster log entry of format {format}; this broker reads format {Format}");
        }

        var topic = reader.String();
        switch (kind)
        {
            case ClusterCommandKind.CreateTopic:
                var settings = new TopicSettings(reader.Int64(), reader.Int64(), (Durability)reader.Int64(), reader.Int64(), reader.Int64(), reader.Int64(),
                    reader.Byte() != 0, reader.Int64());
                return new ClusterCommand(kind, topic, Settings: settings);
            case ClusterCommandKind.ConsumerCommit:
                var consumer = reader.String();
                return new ClusterCommand(kind, topic, Consumer: consumer, Sequence: reader.Int64());
            case ClusterCommandKind.GroupState:
                var group = reader.String();
                var state = GroupStateStore.Deserialize(reader.Bytes().Span, out var problem)
                    ?? throw new InvalidDataException($"cluster log entry with the state of consumer group '{group}' of '{topic}' that cannot be read ({problem})");
                return new ClusterCommand(kind, topic, Consumer: group, Group: state);
            default:
                throw new InvalidDataException($"cluster log entry of unknown kind {(byte)kind}");
        }
    }

    private ref struct Writer(Span<byte> buffer)
    {
        private readonly Span<byte> _buffer = buffer;
        private int _at;

        public void Header(ClusterCommandKind kind)
        {
            Byte((byte)kind);
            Byte(Format);
        }

        public void Byte(byte value) => _buffer[_at++] = value;

        public void Int64(long value)
        {
            BinaryPrimitives.WriteInt64LittleEndian(_buffer[_at..], value);
            _at += 8;
        }

        public void Int32(int value)
        {
            BinaryPrimitives.WriteInt32LittleEndian(_buffer[_at..], value);
            _at += 4;
        }

        public void UInt64(ulong value)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(_buffer[_at..], value);
            _at += 8;
        }

        public void String(string value)
        {
            var length = Encoding.UTF8.GetBytes(value, _buffer[(_at + 2)..]);
            BinaryPrimitives.WriteUInt16LittleEndian(_buffer[_at..], checked((ushort)length));
            _at += 2 + length;
        }

        public void Bytes(ReadOnlySpan<byte> value)
        {
            BinaryPrimitives.WriteInt32LittleEndian(_buffer[_at..], value.Length);
            value.CopyTo(_buffer[(_at + 4)..]);
            _at += 4 + value.Length;
        }
    }

    private ref struct Reader(ReadOnlyMemory<byte> entry)
    {
        private readonly ReadOnlyMemory<byte> _entry = entry;
        private int _at;

        public byte Byte() => Take(1).Span[0];

        public long Int64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8).Span);

        public int Int32() => BinaryPrimitives.ReadInt32LittleEndian(Take(4).Span);

        public ulong UInt64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8).Span);

        public string String() => Encoding.UTF8.GetString(Take(BinaryPrimitives.ReadUInt16LittleEndian(Take(2).Span)).Span);

        public ReadOnlyMemory<byte> Bytes()
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(Take(4).Span);
            if (length < 0)
            {
                throw new InvalidDataException("cluster log entry with a negative length");
            }

            return Take(length);
        }

        private ReadOnlyMemory<byte> Take(int count)
        {
            if (_entry.Length - _at < count)
            {
                throw new InvalidDataException($"cluster log entry of {_entry.Length} bytes ends inside a field");
            }

            var slice = _entry.Slice(_at, count);
            _at += count;
            return slice;
        }
    }
}

/// <summary>What the proposing node learns of each publish of a batch: its outcome, or why it was refused.</summary>
internal sealed class BatchOutcome(int count) : TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)
{
    public PublishOutcome[] Outcomes { get; } = new PublishOutcome[count];

    public Exception?[] Failures { get; } = new Exception?[count];
}

/// <summary>What a node that proposed an entry learns when it applies it: handed to Raft as the entry's context.</summary>
internal sealed class AppliedOutcome<T>() : TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);

/// <summary>Copies a Raft entry's payload to one array when it spans several buffers.</summary>
internal static class SequenceExtensions
{
    public static ReadOnlyMemory<byte> ToMemory(this in ReadOnlySequence<byte> sequence) =>
        sequence.IsSingleSegment ? sequence.First : sequence.ToArray();
}
