using Zaichik.Protocol.Internal;

namespace Zaichik.Protocol;

/// <summary>The answer to a request that failed, or (without a request id) a connection-level failure.</summary>
/// <param name="RequestId">The failed request's id, or null when the error is not about one request.</param>
/// <param name="Code">What failed.</param>
/// <param name="Text">A human-readable explanation.</param>
public readonly record struct ErrorFrame(ulong? RequestId, ErrorCode Code, string Text) : IFrameCodec<ErrorFrame>
{
    static FrameType IFrameCodec<ErrorFrame>.Type => FrameType.Error;

    int IFrameCodec<ErrorFrame>.GetFieldsSize() =>
        FieldSize.Byte + (RequestId.HasValue ? FieldSize.Int64 : 0) + FieldSize.UInt16 + FieldSize.String(Text);

    void IFrameCodec<ErrorFrame>.WriteFields(ref FieldWriter writer)
    {
        writer.WriteBool(RequestId.HasValue);
        if (RequestId.HasValue)
        {
            writer.WriteUInt64(RequestId.Value);
        }

        writer.WriteUInt16((ushort)Code);
        writer.WriteString(Text);
    }

    static ErrorFrame IFrameCodec<ErrorFrame>.ReadFields(ref FieldReader reader)
    {
        ulong? requestId = reader.ReadBool() ? reader.ReadUInt64() : null;
        return new(requestId, (ErrorCode)reader.ReadUInt16(), reader.ReadString());
    }
}
