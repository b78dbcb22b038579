namespace Zaichik.Protocol.Internal;

/// <summary>What every frame struct knows about its own fields; the framing around them lives in the codec.</summary>
internal interface IFrameCodec<TSelf>
    where TSelf : struct, IFrameCodec<TSelf>
{
    static abstract FrameType Type { get; }

    /// <summary>Bytes the fields take, excluding the length prefix and the type byte.</summary>
    int GetFieldsSize();

    void WriteFields(ref FieldWriter writer);

    static abstract TSelf ReadFields(ref FieldReader reader);
}
