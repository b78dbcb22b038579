using Zaichik.Protocol;

namespace Zaichik.Client;

/// <summary>The server answered with an Error frame: a request was refused, or the connection was.</summary>
public sealed class ZaichikServerException : ZaichikException
{
    /// <summary>Creates the exception from an Error frame's code and text.</summary>
    public ZaichikServerException(ErrorCode code, string serverMessage)
        : base($"server error {code}: {serverMessage}")
    {
        Code = code;
        ServerMessage = serverMessage;
    }

    /// <summary>What failed, as the server classified it.</summary>
    public ErrorCode Code { get; }

    /// <summary>The server's explanation, without the code.</summary>
    public string ServerMessage { get; }

    /// <summary>True when the client refused the server's Hello (a protocol version it does not speak), not the server the client's.</summary>
    internal bool RefusedByClient { get; init; }
}
