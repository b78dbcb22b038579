using System.Text;
using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>Opens a connection; the server answers with its own Hello, or an Error and a close.</summary>
/// <param name="Version">The sender's protocol version.</param>
/// <param name="IdleTimeoutMs">
/// From the server: it closes a connection from which nothing has arrived for this many milliseconds (0 = never),
/// so a client knows how often it must send at least a Ping. From a client: 0 (reserved).
/// </param>
/// <param name="Token">From a client: the authentication token, or null when it has none. From the server: always null.</param>
/// <param name="ProducerId">
/// From a client: the id under which the server remembers its idempotent publishes (see
/// <see cref="PublishFrame.ProducerSequence"/>); a client keeps it across reconnects. 0: none. From the server: 0.
/// </param>
/// <remarks>
/// Only <paramref name="Version"/> has a fixed place in every version; the fields after it belong to that version. A Hello
/// of a version outside <see cref="ProtocolVersion.Minimum"/>..<see cref="ProtocolVersion.Current"/> (which share this
/// layout) decodes to its version alone, so that the receiver can answer UnsupportedVersion instead of MalformedFrame.
/// <see cref="ToString"/> never shows the token.
/// </remarks>
public readonly record struct HelloFrame(ushort Version, uint IdleTimeoutMs = 0, string? Token = null, ulong ProducerId = 0) : IFrameCodec<HelloFrame>
{
    static FrameType IFrameCodec<HelloFrame>.Type => FrameType.Hello;

    int IFrameCodec<HelloFrame>.GetFieldsSize() =>
        FieldSize.UInt16 + FieldSize.UInt32 + FieldSize.Byte + (Token is null ? 0 : FieldSize.String(Token)) + FieldSize.Int64;

    void IFrameCodec<HelloFrame>.WriteFields(ref FieldWriter writer)
    {
        writer.WriteUInt16(Version);
        writer.WriteUInt32(IdleTimeoutMs);
        writer.WriteBool(Token is not null);
        if (Token is not null)
        {
            writer.WriteString(Token);
        }

        writer.WriteUInt64(ProducerId);
    }

    static HelloFrame IFrameCodec<HelloFrame>.ReadFields(ref FieldReader reader)
    {
        var version = reader.ReadUInt16();
        if (!ProtocolVersion.IsSupported(version))
        {
            reader.SkipRest();
            return new(version);
        }

        var idleTimeoutMs = reader.ReadUInt32();
        var token = reader.ReadBool() ? reader.ReadString() : null;
        return new(version, idleTimeoutMs, token, reader.ReadUInt64());
    }

    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append("Version = ").Append(Version)
            .Append(", IdleTimeoutMs = ").Append(IdleTimeoutMs)
            .Append(", Token = ").Append(Token is null ? "none" : "(hidden)")
            .Append(", ProducerId = ").Append(ProducerId);
        return true;
    }
}
