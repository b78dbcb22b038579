namespace Zaichik.Protocol;

/// <summary>
/// Thrown by the codec when bytes on the wire do not form a valid frame. Carries the <see cref="ErrorCode"/>
/// to report to the peer before the connection is closed.
/// </summary>
public sealed class ProtocolViolationException : IOException
{
    /// <summary>Creates the exception with the error code to send to the peer.</summary>
    public ProtocolViolationException(ErrorCode code, string message)
        : base(message)
    {
        Code = code;
    }

    /// <summary>The code an Error frame should carry for this failure.</summary>
    public ErrorCode Code { get; }
}
