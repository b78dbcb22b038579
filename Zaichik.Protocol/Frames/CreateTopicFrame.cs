using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>Creates a topic, or confirms one that exists with the same settings.</summary>
/// <param name="RequestId">Echoed in the Ack or Error.</param>
/// <param name="Topic">The topic name (see <see cref="TopicName"/>).</param>
/// <param name="RetentionTtlMs">How long each message is kept, in milliseconds; 0 keeps nothing for late subscribers.</param>
/// <param name="CompactionWindowMs">Key deduplication window in milliseconds; 0 turns it off.</param>
/// <param name="Durability">When messages reach the disk; <see cref="Protocol.Durability.ServerDefault"/> takes the server's.</param>
/// <param name="CommitIntervalMs">For <see cref="Protocol.Durability.Interval"/>: the commit period; 0 takes the server's.</param>
/// <param name="MaxMessages">Most messages the topic keeps, the oldest removed first; 0 = no limit.</param>
/// <param name="MaxBytes">Most bytes of log the topic keeps, the oldest messages removed first; 0 = no limit.</param>
/// <param name="KeepLatestPerKey">Log compaction: keep only the newest message of each key (unkeyed ones under normal retention).</param>
/// <param name="TombstoneRetentionMs">With <paramref name="KeepLatestPerKey"/>: how long a tombstone stays before its key is gone; 0 = the server's default.</param>
public readonly record struct CreateTopicFrame(
    ulong RequestId, string Topic, long RetentionTtlMs, long CompactionWindowMs, Durability Durability = Durability.ServerDefault, long CommitIntervalMs = 0,
    long MaxMessages = 0, long MaxBytes = 0, bool KeepLatestPerKey = false, long TombstoneRetentionMs = 0)
    : IFrameCodec<CreateTopicFrame>
{
    static FrameType IFrameCodec<CreateTopicFrame>.Type => FrameType.CreateTopic;

    int IFrameCodec<CreateTopicFrame>.GetFieldsSize() =>
        FieldSize.Int64 + FieldSize.String(Topic) + FieldSize.Int64 + FieldSize.Int64 + FieldSize.Byte + FieldSize.Int64 + FieldSize.Int64 + FieldSize.Int64 + FieldSize.Byte + FieldSize.Int64;

    void IFrameCodec<CreateTopicFrame>.WriteFields(ref FieldWriter writer)
    {
        writer.WriteUInt64(RequestId);
        writer.WriteString(Topic);
        writer.WriteInt64(RetentionTtlMs);
        writer.WriteInt64(CompactionWindowMs);
        writer.WriteByte((byte)Durability);
        writer.WriteInt64(CommitIntervalMs);
        writer.WriteInt64(MaxMessages);
        writer.WriteInt64(MaxBytes);
        writer.WriteBool(KeepLatestPerKey);
        writer.WriteInt64(TombstoneRetentionMs);
    }

    static CreateTopicFrame IFrameCodec<CreateTopicFrame>.ReadFields(ref FieldReader reader)
    {
        var requestId = reader.ReadUInt64();
        var topic = reader.ReadString();
        var retentionTtlMs = reader.ReadInt64();
        var compactionWindowMs = reader.ReadInt64();
        var durability = reader.ReadByte();
        if (durability > (byte)Durability.Memory)
        {
            throw new ProtocolViolationException(ErrorCode.MalformedFrame, $"CreateTopic durability {durability} is not defined");
        }

        var commitIntervalMs = reader.ReadInt64();
        var maxMessages = reader.ReadInt64();
        var maxBytes = reader.ReadInt64();
        return new(requestId, topic, retentionTtlMs, compactionWindowMs, (Durability)durability, commitIntervalMs, maxMessages, maxBytes, reader.ReadBool(), reader.ReadInt64());
    }
}
