namespace Zaichik.Protocol;

/// <summary>Versions of the wire format.</summary>
/// <remarks>
/// A client sends the version it speaks in its Hello; a server that serves it answers with a Hello carrying the same
/// version (the negotiated one), which then holds for the whole connection. Versions <see cref="Minimum"/> to
/// <see cref="Current"/> share the frame layouts; version 8 adds only what a version 7 peer is never sent (the Redirect
/// frame and the cluster error codes).
/// </remarks>
public static class ProtocolVersion
{
    /// <summary>The version this library speaks, sent in Hello.</summary>
    public const ushort Current = 8;

    /// <summary>The oldest version this library still serves (server) or accepts from a server (client).</summary>
    public const ushort Minimum = 7;

    /// <summary>
    /// The first version whose peers may be sent a <see cref="RedirectFrame"/> (and the cluster error codes
    /// <see cref="ErrorCode.NoLeader"/>, <see cref="ErrorCode.NotSupportedInCluster"/> and <see cref="ErrorCode.NotLeader"/>).
    /// </summary>
    public const ushort FirstWithRedirect = 8;

    /// <summary>Whether <paramref name="version"/> is one this library speaks (<see cref="Minimum"/> to <see cref="Current"/>).</summary>
    public static bool IsSupported(ushort version) => version is >= Minimum and <= Current;

    /// <summary>The supported range for messages, e.g. "7 to 8".</summary>
    public static string SupportedRange => $"{Minimum} to {Current}";
}
