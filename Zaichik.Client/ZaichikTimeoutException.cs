namespace Zaichik.Client;

/// <summary>
/// A request got no answer within <see cref="ZaichikClientOptions.RequestTimeout"/>. The connection stays
/// open; the server may still have carried the request out.
/// </summary>
public sealed class ZaichikTimeoutException : ZaichikException
{
    /// <summary>Creates the exception with a message.</summary>
    public ZaichikTimeoutException(string message)
        : base(message)
    {
    }
}
