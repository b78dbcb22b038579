using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>
/// Acknowledges delivered messages. Without a topic it acknowledges everything delivered on the connection
/// so far; with a topic and offset it acknowledges that topic's deliveries up to and including the offset.
/// Commit has no request id and no Ack; a Commit that names no subscription is answered with an Error.
/// </summary>
/// <param name="Topic">The topic, or null for a bare Commit.</param>
/// <param name="Offset">The last offset acknowledged; ignored for a bare Commit.</param>
public readonly record struct CommitFrame(string? Topic, long Offset) : IFrameCodec<CommitFrame>
{
    /// <summary>A bare Commit: acknowledges everything delivered on the connection.</summary>
    public static CommitFrame All => new(null, 0);

    static FrameType IFrameCodec<CommitFrame>.Type => FrameType.Commit;

    int IFrameCodec<CommitFrame>.GetFieldsSize() =>
        FieldSize.Byte + (Topic is null ? 0 : FieldSize.String(Topic) + FieldSize.Int64);

    void IFrameCodec<CommitFrame>.WriteFields(ref FieldWriter writer)
    {
        writer.WriteBool(Topic is not null);
        if (Topic is not null)
        {
            writer.WriteString(Topic);
            writer.WriteInt64(Offset);
        }
    }

    static CommitFrame IFrameCodec<CommitFrame>.ReadFields(ref FieldReader reader) =>
        reader.ReadBool() ? new(reader.ReadString(), reader.ReadInt64()) : All;
}
