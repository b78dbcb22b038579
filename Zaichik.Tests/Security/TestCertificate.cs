using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Zaichik.Tests.Security;

/// <summary>
/// A certificate made for one test (ECDSA P-256, valid from a day ago for a year), with the files a server is given:
/// PKCS#12 and PEM, in a temporary folder deleted on dispose. By default it is self-signed for <c>localhost</c> and
/// <c>127.0.0.1</c> with the server-auth usage; <see cref="Issue"/> makes a certificate signed by this one.
/// </summary>
internal sealed class TestCertificate : IDisposable
{
    public const string PfxPassword = "correct horse battery staple";

    private const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuthentication = "1.3.6.1.5.5.7.3.2";

    private readonly ECDsa _key;
    private readonly TestCertificate? _issuer;
    private readonly bool _ownsFolder;

    private TestCertificate(X509Certificate2 certificate, ECDsa key, TestCertificate? issuer, string folder, bool ownsFolder)
    {
        _key = key;
        _issuer = issuer;
        _ownsFolder = ownsFolder;
        Folder = folder;
        // What the client trusts carries no key, as it would in real use.
        Public = X509CertificateLoader.LoadCertificate(certificate.RawData);
        WithKey = certificate;
    }

    public string Folder { get; }

    /// <summary>The certificate alone, as a client that trusts it holds it.</summary>
    public X509Certificate2 Public { get; }

    /// <summary>The certificate with its private key, as <see cref="CertificateRequest"/> made it (an ephemeral key).</summary>
    public X509Certificate2 WithKey { get; }

    public static TestCertificate CreateSelfSigned(string commonName = "localhost", bool serverAuthentication = true, bool authority = false)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = Request(commonName, key, serverAuthentication, authority);
        var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        var folder = Path.Combine(Path.GetTempPath(), "zaichik-tls-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        return new TestCertificate(certificate, key, issuer: null, folder, ownsFolder: true);
    }

    /// <summary>A certificate signed by this one, its files written to the same folder.</summary>
    public TestCertificate Issue(string commonName, bool authority = false)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = Request(commonName, key, serverAuthentication: !authority, authority);
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(WithKey, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        // Inside the issuer's validity, a day short of its end: "now + n" computed twice can cross a second and outlive it.
        var notAfter = new DateTimeOffset(WithKey.NotAfter.ToUniversalTime()).AddDays(-1);
        using var issued = request.Create(WithKey, DateTimeOffset.UtcNow.AddDays(-1), notAfter, serial);
        return new TestCertificate(issued.CopyWithPrivateKey(key), key, this, Folder, ownsFolder: false);
    }

    /// <summary>Writes a PKCS#12 file of the certificate and its key (and its issuers, when asked); returns its path.</summary>
    public string WritePfx(string? password = PfxPassword, bool withIssuers = false, bool withKey = true)
    {
        var contents = new X509Certificate2Collection { withKey ? WithKey : Public };
        if (withIssuers)
        {
            contents.AddRange(Issuers().Select(issuer => issuer.Public).ToArray());
        }

        var path = Path.Combine(Folder, $"{Name}-{Guid.NewGuid():N}.pfx");
        File.WriteAllBytes(path, contents.Export(X509ContentType.Pkcs12, password)!);
        return path;
    }

    /// <summary>Writes the certificate (then its issuers, when asked) and its key as PEM files; returns their paths.</summary>
    public (string Certificate, string Key) WritePem(bool withIssuers = false, string? keyPassword = null)
    {
        var certificates = new[] { Public }.Concat(withIssuers ? Issuers().Select(issuer => issuer.Public) : [])
            .Select(certificate => certificate.ExportCertificatePem());
        var stem = Path.Combine(Folder, $"{Name}-{Guid.NewGuid():N}");
        File.WriteAllText(stem + ".crt", string.Join('\n', certificates) + "\n");
        File.WriteAllText(stem + ".key", keyPassword is null
            ? _key.ExportPkcs8PrivateKeyPem()
            : _key.ExportEncryptedPkcs8PrivateKeyPem(keyPassword, new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 10_000)));
        return (stem + ".crt", stem + ".key");
    }

    public void Dispose()
    {
        WithKey.Dispose();
        Public.Dispose();
        _key.Dispose();
        if (_ownsFolder)
        {
            try
            {
                Directory.Delete(Folder, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private string Name => WithKey.GetNameInfo(X509NameType.SimpleName, forIssuer: false).Replace(' ', '-');

    private IEnumerable<TestCertificate> Issuers()
    {
        for (var issuer = _issuer; issuer is not null; issuer = issuer._issuer)
        {
            yield return issuer;
        }
    }

    private static CertificateRequest Request(string commonName, ECDsa key, bool serverAuthentication, bool authority)
    {
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(authority, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        if (authority)
        {
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
            return request;
        }

        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid(serverAuthentication ? ServerAuthentication : ClientAuthentication)], critical: false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        return request;
    }
}
