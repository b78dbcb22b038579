using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>
/// Acknowledges delivered messages. Without a topic it acknowledges everything delivered on the connection
/// so far; with a topic and sequence it acknowledges that topic's deliveries up to and including the sequence.
/// Commit has no request id and no Ack; a Commit that names no subscription is answered with an Error.
/// </summary>
/// <param name="Topic">The topic, or null for a bare Commit.</param>
/// <param name="Sequence">The last sequence acknowledged; ignored for a bare Commit. Encoded as a <c>u64</c>, so it must not be negative.</param>
public readonly record struct CommitFrame(string? Topic, long Sequence) : IFrameCodec<CommitFrame>
{
    /// <summary>A bare Commit: acknowledges everything delivered on the connection.</summary>
    public static CommitFrame All => new(null, 0);

    static FrameType IFrameCodec<CommitFrame>.Type => FrameType.Commit;

    int IFrameCodec<CommitFrame>.GetFieldsSize() =>
        FieldSize.Byte + (Topic is null ? 0 : FieldSize.String(Topic) + FieldSize.Sequence(Sequence, nameof(Sequence)));

    void IFrameCodec<CommitFrame>.WriteFields(ref FieldWriter writer)
    {
        writer.WriteBool(Topic is not null);
        if (Topic is not null)
        {
            writer.WriteString(Topic);
            writer.WriteSequence(Sequence);
        }
    }

    static CommitFrame IFrameCodec<CommitFrame>.ReadFields(ref FieldReader reader) =>
        reader.ReadBool() ? new(reader.ReadString(), reader.ReadSequence()) : All;
}
