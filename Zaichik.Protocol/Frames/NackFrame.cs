using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>
/// Gives back one delivered message of a consumer group member: the group delivers it again (to any member) once
/// <see cref="DelayMs"/> has passed. Like Commit, Nack has no request id and no Ack.
/// </summary>
/// <param name="Topic">The subscription's topic.</param>
/// <param name="Sequence">The delivered message given back. Encoded as a <c>u64</c>, so it must not be negative.</param>
/// <param name="DelayMs">How long the group waits before delivering it again; 0 = at once.</param>
public readonly record struct NackFrame(string Topic, long Sequence, uint DelayMs = 0) : IFrameCodec<NackFrame>
{
    static FrameType IFrameCodec<NackFrame>.Type => FrameType.Nack;

    int IFrameCodec<NackFrame>.GetFieldsSize() => FieldSize.String(Topic) + FieldSize.Sequence(Sequence, nameof(Sequence)) + FieldSize.UInt32;

    void IFrameCodec<NackFrame>.WriteFields(ref FieldWriter writer)
    {
        writer.WriteString(Topic);
        writer.WriteSequence(Sequence);
        writer.WriteUInt32(DelayMs);
    }

    static NackFrame IFrameCodec<NackFrame>.ReadFields(ref FieldReader reader) => new(reader.ReadString(), reader.ReadSequence(), reader.ReadUInt32());
}
