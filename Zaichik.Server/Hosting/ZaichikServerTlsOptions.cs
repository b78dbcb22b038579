using System.Text;
using Zaichik.Server.Hosting.Internal;

namespace Zaichik.Server.Hosting;

/// <summary>
/// TLS on the broker's listener (<c>Zaichik:Tls</c>). When set, every connection must complete a TLS handshake
/// before its first frame; the frames themselves do not change.
/// </summary>
public sealed record ZaichikServerTlsOptions
{
    /// <summary>
    /// The server certificate: a PKCS#12 (.pfx/.p12) file holding the certificate and its private key, or a PEM
    /// file whose first certificate is the server's. Further certificates in the file (intermediates) are sent with it.
    /// Relative paths are from the working directory. Required.
    /// </summary>
    public string CertificatePath { get; set; } = "";

    /// <summary>The password of a PKCS#12 file, or of an encrypted PEM private key. Optional; never logged.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string? CertificatePassword { get; set; }

    /// <summary>The PEM private key of a PEM certificate. Optional when the key is in <see cref="CertificatePath"/> itself.</summary>
    public string? KeyPath { get; set; }

    /// <summary>How long a connection may take to complete the TLS handshake before it is closed. Default 10 s.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Every problem with these options, including a certificate that cannot be loaded or used; empty when valid.</summary>
    internal IEnumerable<string> Validate()
    {
        if (HandshakeTimeout <= TimeSpan.Zero || HandshakeTimeout.TotalMilliseconds > int.MaxValue)
        {
            yield return $"Tls:HandshakeTimeout is {HandshakeTimeout}; it must be positive and at most {int.MaxValue} ms";
        }

        foreach (var problem in ServerCertificate.Problems(this))
        {
            yield return problem;
        }
    }

    // The generated ToString would print the password wherever the options are logged or shown in a debugger.
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append($"CertificatePath = {CertificatePath}, ");
        builder.Append($"CertificatePassword = {(CertificatePassword is null ? "(none)" : "***")}, ");
        builder.Append($"KeyPath = {KeyPath}, HandshakeTimeout = {HandshakeTimeout}");
        return true;
    }
}
