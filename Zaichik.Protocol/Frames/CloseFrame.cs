using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>Asks the server to finish what it has sent and close the connection.</summary>
public readonly record struct CloseFrame : IFrameCodec<CloseFrame>
{
    static FrameType IFrameCodec<CloseFrame>.Type => FrameType.Close;

    int IFrameCodec<CloseFrame>.GetFieldsSize() => 0;

    void IFrameCodec<CloseFrame>.WriteFields(ref FieldWriter writer)
    {
    }

    static CloseFrame IFrameCodec<CloseFrame>.ReadFields(ref FieldReader reader) => default;
}
