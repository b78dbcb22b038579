using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>
/// Acknowledges delivered messages. Without a topic it acknowledges everything delivered on the connection so far; with a
/// topic and sequence it acknowledges that topic's deliveries up to and including the sequence, or, when
/// <see cref="Single"/>, that one delivery only (a consumer group member's individual commit). Commit has no request id and
/// no Ack; a Commit that names no subscription is answered with an Error.
/// </summary>
/// <param name="Topic">The topic, or null for a bare Commit.</param>
/// <param name="Sequence">The last sequence acknowledged (or the one, when <paramref name="Single"/>); ignored for a bare Commit. Encoded as a <c>u64</c>, so it must not be negative.</param>
/// <param name="Single">Acknowledges exactly <paramref name="Sequence"/>, not every delivery up to it. Needs a topic.</param>
public readonly record struct CommitFrame(string? Topic, long Sequence, bool Single = false) : IFrameCodec<CommitFrame>
{
    private const byte Bare = 0;
    private const byte UpTo = 1;
    private const byte One = 2;

    /// <summary>A bare Commit: acknowledges everything delivered on the connection.</summary>
    public static CommitFrame All => new(null, 0);

    static FrameType IFrameCodec<CommitFrame>.Type => FrameType.Commit;

    int IFrameCodec<CommitFrame>.GetFieldsSize() =>
        FieldSize.Byte + (Topic is null ? 0 : FieldSize.String(Topic) + FieldSize.Sequence(Sequence, nameof(Sequence)));

    void IFrameCodec<CommitFrame>.WriteFields(ref FieldWriter writer)
    {
        if (Topic is null)
        {
            if (Single)
            {
                throw new ArgumentException("a Commit of a single sequence names its topic", nameof(Topic));
            }

            writer.WriteByte(Bare);
            return;
        }

        writer.WriteByte(Single ? One : UpTo);
        writer.WriteString(Topic);
        writer.WriteSequence(Sequence);
    }

    static CommitFrame IFrameCodec<CommitFrame>.ReadFields(ref FieldReader reader) =>
        reader.ReadByte() switch
        {
            Bare => All,
            UpTo => new(reader.ReadString(), reader.ReadSequence()),
            One => new(reader.ReadString(), reader.ReadSequence(), Single: true),
            var mode => throw new ProtocolViolationException(ErrorCode.MalformedFrame, $"Commit mode {mode} is not defined; expected 0, 1 or 2"),
        };
}
