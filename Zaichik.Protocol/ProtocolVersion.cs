namespace Zaichik.Protocol;

/// <summary>Versions of the wire format.</summary>
public static class ProtocolVersion
{
    /// <summary>The version this library speaks, sent in Hello.</summary>
    public const ushort Current = 7;
}
