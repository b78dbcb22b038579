namespace Zaichik.Client;

/// <summary>
/// The connection could not be opened, was lost, or was closed: the server is unreachable, the socket
/// failed, the server closed it, or the client was disposed while the operation was waiting.
/// </summary>
public sealed class ZaichikConnectionException : ZaichikException
{
    /// <summary>Creates the exception with a message.</summary>
    public ZaichikConnectionException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the failure that caused it.</summary>
    public ZaichikConnectionException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
