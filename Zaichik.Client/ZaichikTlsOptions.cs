using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Zaichik.Client;

/// <summary>
/// TLS for a client connection (<see cref="ZaichikClientOptions.Tls"/>). By default the server's certificate must
/// be trusted by the operating system and name the host connected to, as for HTTPS.
/// </summary>
public sealed record ZaichikTlsOptions
{
    /// <summary>The defaults documented on each property.</summary>
    public static ZaichikTlsOptions Default { get; } = new();

    /// <summary>
    /// The name the server's certificate must carry, also sent as SNI. Default: the host passed to
    /// <see cref="ZaichikClient.ConnectAsync(ZaichikClientOptions, CancellationToken)"/> (an IP address is then checked against the certificate's IP entries).
    /// </summary>
    public string? TargetHost { get; init; }

    /// <summary>
    /// A certificate to accept when the server presents exactly it (same bytes), whether or not the operating system
    /// trusts it and whatever name it carries: the way to trust a self-signed server certificate. Any other
    /// certificate is still checked the default way. Ignored when <see cref="RemoteCertificateValidation"/> is set.
    /// </summary>
    public X509Certificate2? TrustedCertificate { get; init; }

    /// <summary>Decides alone whether the server's certificate is accepted, replacing every other check. Default none.</summary>
    public RemoteCertificateValidationCallback? RemoteCertificateValidation { get; init; }

    internal void Validate()
    {
        if (TargetHost is not null && string.IsNullOrWhiteSpace(TargetHost))
        {
            throw new ArgumentException("Tls.TargetHost must not be empty; leave it null to use the host connected to", nameof(TargetHost));
        }
    }
}
