namespace Zaichik.Client;

/// <summary>The base of every exception the Zaichik client throws for a broker or connection problem.</summary>
public class ZaichikException : Exception
{
    /// <summary>Creates the exception with a message.</summary>
    public ZaichikException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the failure that caused it.</summary>
    public ZaichikException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
