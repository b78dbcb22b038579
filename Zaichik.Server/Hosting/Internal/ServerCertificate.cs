using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;

namespace Zaichik.Server.Hosting.Internal;

/// <summary>
/// The broker's TLS certificate with its private key, and the intermediates found beside it in the same file,
/// loaded once at start-up from <see cref="ZaichikServerTlsOptions"/>. Every failure is an
/// <see cref="InvalidOperationException"/> whose message names the setting and says what is wrong.
/// </summary>
internal sealed partial class ServerCertificate : IDisposable
{
    private const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";

    private ServerCertificate(X509Certificate2 certificate, X509Certificate2Collection chain)
    {
        Certificate = certificate;
        Chain = chain;
    }

    public X509Certificate2 Certificate { get; }

    /// <summary>Intermediates sent with the certificate, so clients need only the root.</summary>
    public X509Certificate2Collection Chain { get; }

    /// <summary>Every problem that would stop <see cref="Load"/>; empty when it would succeed.</summary>
    public static IReadOnlyList<string> Problems(ZaichikServerTlsOptions tls)
    {
        if (string.IsNullOrWhiteSpace(tls.CertificatePath))
        {
            return ["Tls:CertificatePath is not set; it must name a PFX (PKCS#12) file or a PEM certificate"];
        }

        var problems = new List<string>();
        if (!File.Exists(tls.CertificatePath))
        {
            problems.Add($"Tls:CertificatePath '{tls.CertificatePath}' does not exist (looked for {Path.GetFullPath(tls.CertificatePath)})");
        }

        if (tls.KeyPath is not null && !File.Exists(tls.KeyPath))
        {
            problems.Add($"Tls:KeyPath '{tls.KeyPath}' does not exist (looked for {Path.GetFullPath(tls.KeyPath)})");
        }

        if (problems.Count == 0)
        {
            try
            {
                Load(tls).Dispose();
            }
            catch (InvalidOperationException e)
            {
                problems.Add(e.Message);
            }
        }

        return problems;
    }

    /// <summary>Loads the certificate, its key and its intermediates, and checks it can serve TLS.</summary>
    /// <exception cref="InvalidOperationException">It cannot be read or used; the message says why.</exception>
    public static ServerCertificate Load(ZaichikServerTlsOptions tls)
    {
        var path = tls.CertificatePath;
        byte[] contents;
        try
        {
            contents = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"Tls:CertificatePath '{path}' cannot be read: {e.Message}", e);
        }

        var loaded = IsPem(contents) ? LoadPem(tls) : LoadPkcs12(tls, contents);
        try
        {
            if (!AllowsServerAuthentication(loaded.Certificate))
            {
                throw new InvalidOperationException(
                    $"Tls:CertificatePath '{path}': the certificate {loaded.Certificate.Subject} is not for servers; its extended key usage lacks serverAuth ({ServerAuthentication})");
            }

            return loaded;
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
    }

    /// <summary>Kestrel's TLS settings for the listener.</summary>
    public HttpsConnectionAdapterOptions ConnectionOptions(ZaichikServerTlsOptions tls) => new()
    {
        ServerCertificate = Certificate,
        ServerCertificateChain = Chain.Count > 0 ? Chain : null,
        HandshakeTimeout = tls.HandshakeTimeout,
        // None lets the OS choose: TLS 1.2 and 1.3 on every supported system, never the deprecated versions.
        SslProtocols = SslProtocols.None,
        ClientCertificateMode = ClientCertificateMode.NoCertificate,
        // Kestrel would offer h2 and http/1.1 by ALPN; the broker speaks neither, so it takes part in no ALPN
        // negotiation. Clients that offer a protocol name still connect.
        OnAuthenticate = static (_, ssl) => ssl.ApplicationProtocols = null,
    };

    /// <summary>Says which certificate is served, and warns when clients will refuse it for its dates.</summary>
    public void LogUse(ILogger logger, DateTimeOffset now)
    {
        LogServing(logger, Certificate.Subject, Certificate.Thumbprint, Certificate.NotAfter.ToUniversalTime(), Chain.Count);
        if (now.UtcDateTime > Certificate.NotAfter.ToUniversalTime())
        {
            LogExpired(logger, Certificate.Subject, Certificate.NotAfter.ToUniversalTime());
        }
        else if (now.UtcDateTime < Certificate.NotBefore.ToUniversalTime())
        {
            LogNotYetValid(logger, Certificate.Subject, Certificate.NotBefore.ToUniversalTime());
        }
    }

    public void Dispose()
    {
        Certificate.Dispose();
        foreach (var certificate in Chain)
        {
            certificate.Dispose();
        }
    }

    private static ServerCertificate LoadPkcs12(ZaichikServerTlsOptions tls, byte[] contents)
    {
        if (tls.KeyPath is not null)
        {
            throw new InvalidOperationException(
                $"Tls:KeyPath is set, but '{tls.CertificatePath}' is a PKCS#12 file, which carries its own key; KeyPath is only for a PEM certificate");
        }

        X509Certificate2Collection all;
        try
        {
            all = X509CertificateLoader.LoadPkcs12Collection(contents, tls.CertificatePassword);
        }
        catch (CryptographicException e)
        {
            // The loader's messages never contain the password.
            throw new InvalidOperationException(
                $"Tls:CertificatePath '{tls.CertificatePath}' could not be loaded as a PKCS#12 (PFX) file, and it is not PEM: {e.Message}", e);
        }

        var leaf = all.FirstOrDefault(certificate => certificate.HasPrivateKey);
        if (leaf is null)
        {
            var subject = all.Count > 0 ? all[0].Subject : "(none)";
            DisposeAll(all);
            throw new InvalidOperationException(
                $"Tls:CertificatePath '{tls.CertificatePath}' holds no private key (certificate {subject}); the server needs the certificate's key");
        }

        var chain = new X509Certificate2Collection();
        foreach (var certificate in all)
        {
            if (!ReferenceEquals(certificate, leaf))
            {
                chain.Add(certificate);
            }
        }

        return new ServerCertificate(leaf, chain);
    }

    private static ServerCertificate LoadPem(ZaichikServerTlsOptions tls)
    {
        var path = tls.CertificatePath;
        var all = new X509Certificate2Collection();
        try
        {
            all.ImportFromPemFile(path);
        }
        catch (CryptographicException e)
        {
            throw new InvalidOperationException($"Tls:CertificatePath '{path}' is not a readable PEM certificate: {e.Message}", e);
        }

        if (all.Count == 0)
        {
            throw new InvalidOperationException($"Tls:CertificatePath '{path}' holds no PEM certificate (no BEGIN CERTIFICATE block)");
        }

        var keyPath = tls.KeyPath ?? path;
        string keyText;
        try
        {
            keyText = File.ReadAllText(keyPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            DisposeAll(all);
            throw new InvalidOperationException($"Tls:KeyPath '{keyPath}' cannot be read: {e.Message}", e);
        }

        if (!keyText.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
        {
            var subject = all[0].Subject;
            DisposeAll(all);
            throw new InvalidOperationException(tls.KeyPath is null
                ? $"Tls:CertificatePath '{path}' holds no private key (certificate {subject}); set Tls:KeyPath to its PEM key file"
                : $"Tls:KeyPath '{keyPath}' holds no PEM private key");
        }

        if (tls.CertificatePassword is null && keyText.Contains("BEGIN ENCRYPTED PRIVATE KEY", StringComparison.Ordinal))
        {
            DisposeAll(all);
            throw new InvalidOperationException($"the private key in '{keyPath}' is encrypted; set Tls:CertificatePassword");
        }

        X509Certificate2 leaf;
        try
        {
            leaf = tls.CertificatePassword is null
                ? X509Certificate2.CreateFromPemFile(path, tls.KeyPath)
                : X509Certificate2.CreateFromEncryptedPemFile(path, tls.CertificatePassword, tls.KeyPath);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            // A key that belongs to another certificate is an ArgumentException; a malformed one a CryptographicException.
            DisposeAll(all);
            throw new InvalidOperationException(
                $"Tls:CertificatePath '{path}' could not be paired with its private key from '{keyPath}': {e.Message}", e);
        }

        if (OperatingSystem.IsWindows())
        {
            // SChannel cannot serve TLS with the ephemeral key a PEM file gives; a PKCS#12 round trip stores one it can use.
            using var ephemeral = leaf;
            leaf = X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), password: null);
        }

        all[0].Dispose();
        all.RemoveAt(0);
        return new ServerCertificate(leaf, all);
    }

    private static bool IsPem(byte[] contents) =>
        Encoding.ASCII.GetString(contents, 0, Math.Min(contents.Length, 64 * 1024)).Contains("-----BEGIN ", StringComparison.Ordinal);

    private static bool AllowsServerAuthentication(X509Certificate2 certificate)
    {
        // A certificate without the extension may be used for anything, as Kestrel and TLS clients agree.
        foreach (var extension in certificate.Extensions)
        {
            if (extension is X509EnhancedKeyUsageExtension usage)
            {
                foreach (var oid in usage.EnhancedKeyUsages)
                {
                    if (oid.Value == ServerAuthentication)
                    {
                        return true;
                    }
                }

                return false;
            }
        }

        return true;
    }

    private static void DisposeAll(X509Certificate2Collection certificates)
    {
        foreach (var certificate in certificates)
        {
            certificate.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "TLS on: serving certificate {Subject} ({Thumbprint}), valid until {NotAfter:u}, with {Intermediates} intermediate certificate(s)")]
    private static partial void LogServing(ILogger logger, string subject, string thumbprint, DateTime notAfter, int intermediates);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The TLS certificate {Subject} expired at {NotAfter:u}; clients that check it will refuse to connect")]
    private static partial void LogExpired(ILogger logger, string subject, DateTime notAfter);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The TLS certificate {Subject} is not valid before {NotBefore:u}; clients that check it will refuse to connect until then")]
    private static partial void LogNotYetValid(ILogger logger, string subject, DateTime notBefore);
}
