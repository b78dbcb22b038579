using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using DotNext.Net.Security;
using Zaichik.Server.Hosting;
using Zaichik.Server.Hosting.Internal;

namespace Zaichik.Server.Cluster;

/// <summary>
/// Mutual TLS between cluster nodes (<c>Cluster:Tls</c>). When set, every Raft connection is encrypted and both ends
/// present a certificate that must chain to <see cref="TrustedCaPath"/>: a process without such a certificate can neither
/// take part in elections nor read or write the replicated log. Without it the Raft listener is plain TCP and must stay
/// on a private network (the broker logs a warning).
/// </summary>
public sealed record ClusterTlsOptions
{
    /// <summary>This node's certificate with its private key: PKCS#12 (.pfx/.p12) or PEM, as <c>Tls:CertificatePath</c>. Required.</summary>
    public string CertificatePath { get; set; } = "";

    /// <summary>The password of a PKCS#12 file or of an encrypted PEM key. Optional; never logged or shown by the admin API.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string? CertificatePassword { get; set; }

    /// <summary>The PEM private key of a PEM certificate, when it is not in <see cref="CertificatePath"/>.</summary>
    public string? KeyPath { get; set; }

    /// <summary>
    /// A PEM file with the certificate authority (or authorities) that issued the nodes' certificates. A peer is accepted
    /// when its certificate chains to one of them; its name is not checked, since nodes are addressed by IP. Required.
    /// </summary>
    public string TrustedCaPath { get; set; } = "";

    /// <summary>Every problem with these options, including certificates that cannot be loaded; empty when valid.</summary>
    internal IEnumerable<string> Validate()
    {
        foreach (var problem in ServerCertificate.Problems(AsServerTls()))
        {
            yield return Named(problem);
        }

        if (TrustedCaProblem() is { } trust)
        {
            yield return trust;
        }
    }

    /// <summary>Loads the node's certificate and the trusted authorities; the caller disposes the result.</summary>
    /// <exception cref="InvalidOperationException">A file cannot be read or used; the message names the setting.</exception>
    internal ClusterTls Load()
    {
        ServerCertificate certificate;
        try
        {
            certificate = ServerCertificate.Load(AsServerTls());
        }
        catch (InvalidOperationException failure)
        {
            throw new InvalidOperationException(Named(failure.Message), failure);
        }

        var authorities = new X509Certificate2Collection();
        try
        {
            authorities.ImportFromPemFile(TrustedCaPath);
        }
        catch (Exception failure) when (failure is CryptographicException or IOException or UnauthorizedAccessException)
        {
            certificate.Dispose();
            throw new InvalidOperationException($"Cluster:Tls:TrustedCaPath '{TrustedCaPath}' cannot be read as PEM certificates: {failure.Message}", failure);
        }

        return new ClusterTls(certificate, authorities);
    }

    private ZaichikServerTlsOptions AsServerTls() => new()
    {
        CertificatePath = CertificatePath,
        CertificatePassword = CertificatePassword,
        KeyPath = KeyPath,
    };

    private string? TrustedCaProblem()
    {
        if (string.IsNullOrWhiteSpace(TrustedCaPath))
        {
            return "Cluster:Tls:TrustedCaPath is not set; it must name a PEM file with the authority that issued the nodes' certificates";
        }

        if (!File.Exists(TrustedCaPath))
        {
            return $"Cluster:Tls:TrustedCaPath '{TrustedCaPath}' does not exist (looked for {Path.GetFullPath(TrustedCaPath)})";
        }

        try
        {
            var authorities = new X509Certificate2Collection();
            authorities.ImportFromPemFile(TrustedCaPath);
            var count = authorities.Count;
            foreach (var authority in authorities)
            {
                authority.Dispose();
            }

            return count == 0 ? $"Cluster:Tls:TrustedCaPath '{TrustedCaPath}' holds no PEM certificate (no BEGIN CERTIFICATE block)" : null;
        }
        catch (Exception failure) when (failure is CryptographicException or IOException or UnauthorizedAccessException)
        {
            return $"Cluster:Tls:TrustedCaPath '{TrustedCaPath}' cannot be read as PEM certificates: {failure.Message}";
        }
    }

    // The certificate loader speaks of Tls:...; here the same settings live under Cluster:Tls.
    private static string Named(string problem) => problem.StartsWith("Tls:", StringComparison.Ordinal) ? "Cluster:" + problem : "Cluster:Tls: " + problem;

    // The generated ToString would print the password wherever the options are logged.
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append($"CertificatePath = {CertificatePath}, ");
        builder.Append($"CertificatePassword = {(CertificatePassword is null ? "(none)" : "***")}, ");
        builder.Append($"KeyPath = {KeyPath}, TrustedCaPath = {TrustedCaPath}");
        return true;
    }
}

/// <summary>The loaded certificate and authorities of <see cref="ClusterTlsOptions"/>, as the Raft transport's TLS settings.</summary>
internal sealed class ClusterTls(ServerCertificate certificate, X509Certificate2Collection authorities) : IDisposable
{
    public string Subject => certificate.Certificate.Subject;

    /// <summary>Both directions present this node's certificate and accept only a peer whose certificate chains to the authorities.</summary>
    public SslOptions CreateOptions()
    {
        var context = SslStreamCertificateContext.Create(certificate.Certificate, certificate.Chain, offline: true);
        var options = new SslOptions();
        options.ServerOptions.ServerCertificateContext = context;
        options.ServerOptions.ClientCertificateRequired = true;
        options.ServerOptions.EnabledSslProtocols = SslProtocols.None;
        options.ServerOptions.CertificateRevocationCheckMode = X509RevocationMode.NoCheck;
        options.ServerOptions.RemoteCertificateValidationCallback = Verify;
        options.ClientOptions.ClientCertificateContext = context;
        options.ClientOptions.EnabledSslProtocols = SslProtocols.None;
        options.ClientOptions.CertificateRevocationCheckMode = X509RevocationMode.NoCheck;
        options.ClientOptions.RemoteCertificateValidationCallback = Verify;
        return options;
    }

    /// <summary>True when the peer sent a certificate that chains to one of the trusted authorities (names are not checked).</summary>
    public bool Verify(object sender, X509Certificate? presented, X509Chain? sent, SslPolicyErrors errors)
    {
        if (presented is null)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (sent is not null)
        {
            foreach (var element in sent.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        var leaf = presented as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
        return chain.Build(leaf);
    }

    public void Dispose()
    {
        certificate.Dispose();
        foreach (var authority in authorities)
        {
            authority.Dispose();
        }
    }
}
