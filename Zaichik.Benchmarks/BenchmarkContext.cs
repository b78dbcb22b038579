using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Zaichik.Client;
using Zaichik.Server.Hosting;

namespace Zaichik.Benchmarks;

/// <summary>
/// The server the workloads talk to (an in-process broker on a temporary data folder, or an external one) and
/// the helpers every workload shares: connecting, unique topic names, payloads.
/// </summary>
internal sealed class BenchmarkContext : IAsyncDisposable
{
    /// <summary>Every workload publishes payloads of this size, as the peers were measured with.</summary>
    public const int PayloadSize = 100;

    // Workloads create, await and dispose their own connections; a request that hangs is bounded by this
    // rather than by the client's default of 30 s, so a stuck workload still ends inside its time limit.
    private static readonly ZaichikClientOptions ClientOptions = ZaichikClientOptions.Default with
    {
        RequestTimeout = TimeSpan.FromSeconds(20),
    };

    private readonly ZaichikServer? _server;
    private readonly ZaichikClientOptions _clientOptions;
    private readonly string? _dataPath;
    private readonly string _runId = DateTime.UtcNow.ToString("HHmmss", System.Globalization.CultureInfo.InvariantCulture);
    private int _topics;

    private BenchmarkContext(BenchmarkSettings settings, string host, int port, ZaichikServer? server, string? dataPath, TimeSpan? commitInterval, X509Certificate2? certificate = null)
    {
        Settings = settings;
        _clientOptions = certificate is null ? ClientOptions : ClientOptions with { Tls = new ZaichikTlsOptions { TrustedCertificate = certificate } };
        CommitInterval = commitInterval;
        Host = host;
        Port = port;
        _server = server;
        _dataPath = dataPath;
    }

    public BenchmarkSettings Settings { get; }

    public string Host { get; }

    public int Port { get; }

    /// <summary>The in-process server's data folder; null for an external server.</summary>
    public string? DataPath => _dataPath;

    /// <summary>True when the broker runs in this process, so CPU and memory figures include it.</summary>
    public bool InProcess => _server is not null;

    /// <summary>The in-process server's commit period for Interval topics; null for an external server (unknown).</summary>
    public TimeSpan? CommitInterval { get; }

    public string ServerDescription =>
        (InProcess ? $"in-process server on 127.0.0.1:{Port} (data in {_dataPath})" : $"external server at {Host}:{Port}")
        + (_clientOptions.Tls is null ? "" : ", TLS with a self-signed ECDSA P-256 certificate");

    public static async Task<BenchmarkContext> CreateAsync(BenchmarkSettings settings)
    {
        if (!settings.InProcess)
        {
            return new BenchmarkContext(settings, settings.Host!, settings.Port, null, null, null);
        }

        var dataPath = Path.Combine(Path.GetTempPath(), $"zaichik-bench-{Guid.NewGuid():N}");
        var options = new ZaichikServerOptions { Host = "127.0.0.1", Port = 0, DataPath = dataPath, Admin = new AdminOptions { Url = "" } };
        X509Certificate2? certificate = null;
        if (settings.Tls)
        {
            Directory.CreateDirectory(dataPath);
            var pfx = Path.Combine(dataPath, "benchmark.pfx");
            certificate = WriteSelfSignedCertificate(pfx);
            options = options with { Tls = new ZaichikServerTlsOptions { CertificatePath = pfx } };
        }

        var server = await ZaichikServer.StartAsync(options, timeProvider: null);
        return new BenchmarkContext(settings, "127.0.0.1", server.Port, server, dataPath, options.CommitInterval, certificate);
    }

    public ValueTask<ZaichikClient> ConnectAsync(CancellationToken cancellationToken) =>
        ZaichikClient.ConnectAsync(Host, Port, _clientOptions, cancellationToken);

    /// <summary>A certificate for 127.0.0.1, written as a PFX for the server; the public part is what the client trusts.</summary>
    private static X509Certificate2 WriteSelfSignedCertificate(string path)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pfx));
        return X509CertificateLoader.LoadCertificate(certificate.Export(X509ContentType.Cert));
    }

    /// <summary>A topic name no earlier run or workload used, so every workload starts from an empty topic.</summary>
    public string NewTopicName(string workload) => $"bench-{workload}-{_runId}-{Environment.ProcessId}-{Interlocked.Increment(ref _topics)}";

    /// <summary>A payload of <see cref="PayloadSize"/> bytes that is not all zeros (nothing on the way may shortcut it).</summary>
    public static byte[] NewPayload()
    {
        var payload = new byte[PayloadSize];
        for (var i = 0; i < payload.Length; i++)
        {
            payload[i] = (byte)('a' + i % 26);
        }

        return payload;
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is null)
        {
            return;
        }

        await _server.DisposeAsync();
        try
        {
            Directory.Delete(_dataPath!, recursive: true);
        }
        catch (IOException exception)
        {
            Console.Error.WriteLine($"could not delete {_dataPath}: {exception.Message}");
        }
    }
}
