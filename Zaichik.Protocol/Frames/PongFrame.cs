using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>The answer to a <see cref="PingFrame"/>, carrying its nonce.</summary>
/// <param name="Nonce">The nonce of the Ping this answers.</param>
public readonly record struct PongFrame(ulong Nonce) : IFrameCodec<PongFrame>
{
    static FrameType IFrameCodec<PongFrame>.Type => FrameType.Pong;

    int IFrameCodec<PongFrame>.GetFieldsSize() => FieldSize.Int64;

    void IFrameCodec<PongFrame>.WriteFields(ref FieldWriter writer) => writer.WriteUInt64(Nonce);

    static PongFrame IFrameCodec<PongFrame>.ReadFields(ref FieldReader reader) => new(reader.ReadUInt64());
}
