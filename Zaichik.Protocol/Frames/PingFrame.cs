using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>
/// Asks the peer to show it is alive; either side may send it after Hello, and the peer answers with a
/// <see cref="PongFrame"/> carrying the same <paramref name="Nonce"/>. Any frame counts as activity for the idle timeout.
/// </summary>
/// <param name="Nonce">Any value; echoed in the Pong.</param>
public readonly record struct PingFrame(ulong Nonce) : IFrameCodec<PingFrame>
{
    static FrameType IFrameCodec<PingFrame>.Type => FrameType.Ping;

    int IFrameCodec<PingFrame>.GetFieldsSize() => FieldSize.Int64;

    void IFrameCodec<PingFrame>.WriteFields(ref FieldWriter writer) => writer.WriteUInt64(Nonce);

    static PingFrame IFrameCodec<PingFrame>.ReadFields(ref FieldReader reader) => new(reader.ReadUInt64());
}
