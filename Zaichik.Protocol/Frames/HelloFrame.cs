using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>Opens a connection; the server answers with its own Hello, or an Error and a close.</summary>
/// <param name="Version">The sender's protocol version.</param>
public readonly record struct HelloFrame(ushort Version) : IFrameCodec<HelloFrame>
{
    static FrameType IFrameCodec<HelloFrame>.Type => FrameType.Hello;

    int IFrameCodec<HelloFrame>.GetFieldsSize() => FieldSize.UInt16;

    void IFrameCodec<HelloFrame>.WriteFields(ref FieldWriter writer) => writer.WriteUInt16(Version);

    static HelloFrame IFrameCodec<HelloFrame>.ReadFields(ref FieldReader reader) => new(reader.ReadUInt16());
}
