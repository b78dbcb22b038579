namespace Zaichik.Protocol;

/// <summary>
/// One framed unit as read off the wire: its type and its fields, not yet decoded. <see cref="Body"/> points
/// into the reader's input (or its scratch buffer) and is valid only until the input is advanced or the
/// next frame is read.
/// </summary>
public readonly record struct RawFrame(FrameType Type, ReadOnlyMemory<byte> Body);
