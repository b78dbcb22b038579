using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>Creates a topic, or confirms one that exists with the same settings.</summary>
/// <param name="RequestId">Echoed in the Ack or Error.</param>
/// <param name="Topic">The topic name (see <see cref="TopicName"/>).</param>
/// <param name="RetentionTtlMs">How long each message is kept, in milliseconds; 0 keeps nothing for late subscribers.</param>
/// <param name="CompactionWindowMs">Key deduplication window in milliseconds; 0 turns it off.</param>
public readonly record struct CreateTopicFrame(ulong RequestId, string Topic, long RetentionTtlMs, long CompactionWindowMs)
    : IFrameCodec<CreateTopicFrame>
{
    static FrameType IFrameCodec<CreateTopicFrame>.Type => FrameType.CreateTopic;

    int IFrameCodec<CreateTopicFrame>.GetFieldsSize() =>
        FieldSize.Int64 + FieldSize.String(Topic) + FieldSize.Int64 + FieldSize.Int64;

    void IFrameCodec<CreateTopicFrame>.WriteFields(ref FieldWriter writer)
    {
        writer.WriteUInt64(RequestId);
        writer.WriteString(Topic);
        writer.WriteInt64(RetentionTtlMs);
        writer.WriteInt64(CompactionWindowMs);
    }

    static CreateTopicFrame IFrameCodec<CreateTopicFrame>.ReadFields(ref FieldReader reader) =>
        new(reader.ReadUInt64(), reader.ReadString(), reader.ReadInt64(), reader.ReadInt64());
}
