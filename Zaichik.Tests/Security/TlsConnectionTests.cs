using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Security;

public sealed class TlsConnectionTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan ShortConnectTimeout = TimeSpan.FromSeconds(2);

    [Fact]
    public async Task Client_trusting_the_self_signed_pfx_certificate_publishes_subscribes_receives_and_commits_over_TLS()
    {
        using var certificate = TestCertificate.CreateSelfSigned();
        var logs = new CapturingLoggerProvider();
        await using var server = await TestServer.StartAsync(
            options => options with { Tls = new() { CertificatePath = certificate.WritePfx(), CertificatePassword = TestCertificate.PfxPassword } },
            logs: logs);

        await using var client = await ConnectAsync(server.Port, Trusting(certificate));
        await RoundTripAsync(client);

        logs.Lines.ShouldContain(line => line.Contains("TLS on: serving certificate CN=localhost") && line.Contains(certificate.Public.Thumbprint));
        logs.Lines.ShouldNotContain(line => line.Contains(TestCertificate.PfxPassword), "the certificate's password must never be logged");
    }

    [Fact]
    public async Task Pem_certificate_with_a_separate_key_file_serves_the_same_round_trip()
    {
        using var certificate = TestCertificate.CreateSelfSigned();
        var (certificatePath, keyPath) = certificate.WritePem();
        await using var server = await TestServer.StartAsync(options => options with { Tls = new() { CertificatePath = certificatePath, KeyPath = keyPath } });

        await using var client = await ConnectAsync(server.Port, Trusting(certificate));

        await RoundTripAsync(client);
    }

    [Theory]
    [InlineData("pem")]
    [InlineData("pfx")]
    public async Task Intermediates_in_the_certificate_file_are_sent_so_a_client_needs_only_the_root(string format)
    {
        using var root = TestCertificate.CreateSelfSigned("Zaichik Test Root", authority: true);
        using var intermediate = root.Issue("Zaichik Test Intermediate", authority: true);
        using var leaf = intermediate.Issue("localhost");
        var fullChain = leaf.WritePem(withIssuers: true);
        var leafAlone = leaf.WritePem();
        var chained = format == "pem"
            ? new ZaichikServerTlsOptions { CertificatePath = fullChain.Certificate, KeyPath = fullChain.Key }
            : new ZaichikServerTlsOptions { CertificatePath = leaf.WritePfx(withIssuers: true), CertificatePassword = TestCertificate.PfxPassword };
        var trustingTheRoot = new ZaichikTlsOptions { RemoteCertificateValidation = (_, presented, chain, _) => ChainsTo(root.Public, presented, chain) };
        await using var withIntermediates = await TestServer.StartAsync(options => options with { Tls = chained });
        await using var leafOnly = await TestServer.StartAsync(options => options with
        {
            Tls = new() { CertificatePath = leafAlone.Certificate, KeyPath = leafAlone.Key },
        });

        await using var client = await ConnectAsync(withIntermediates.Port, trustingTheRoot);
        var refused = await Should.ThrowAsync<ZaichikConnectionException>(ConnectAsync(leafOnly.Port, trustingTheRoot));

        await RoundTripAsync(client);
        refused.Message.ShouldContain("rejected by Tls.RemoteCertificateValidation");
    }

    [Fact]
    public async Task Client_that_does_not_trust_the_certificate_fails_naming_it_and_the_server_keeps_serving_trusting_clients()
    {
        using var certificate = TestCertificate.CreateSelfSigned();
        using var another = TestCertificate.CreateSelfSigned();
        await using var server = await TestServer.StartAsync(options => options with
        {
            Tls = new() { CertificatePath = certificate.WritePfx(), CertificatePassword = TestCertificate.PfxPassword },
        });

        var untrusted = await Should.ThrowAsync<ZaichikConnectionException>(ConnectAsync(server.Port, new ZaichikTlsOptions()));
        var pinnedToAnother = await Should.ThrowAsync<ZaichikConnectionException>(ConnectAsync(server.Port, Trusting(another)));
        await using var trusting = await ConnectAsync(server.Port, Trusting(certificate));

        untrusted.Message.ShouldStartWith($"could not connect to Zaichik at 127.0.0.1:{server.Port}: TLS failed: the server certificate was not trusted: RemoteCertificateChainErrors");
        pinnedToAnother.Message.ShouldContain("the server certificate was not trusted");
        pinnedToAnother.Message.ShouldContain("it is not Tls.TrustedCertificate either");
        await RoundTripAsync(trusting);
    }

    [Fact]
    public async Task Certificate_for_another_name_is_refused_naming_the_host_unless_it_is_the_trusted_certificate()
    {
        using var certificate = TestCertificate.CreateSelfSigned();
        await using var server = await TestServer.StartAsync(options => options with
        {
            Tls = new() { CertificatePath = certificate.WritePfx(), CertificatePassword = TestCertificate.PfxPassword },
        });
        SslPolicyErrors? seen = null;
        var options = new ZaichikTlsOptions
        {
            TargetHost = "broker.example.com",
            RemoteCertificateValidation = (_, _, _, errors) =>
            {
                seen = errors;
                return false;
            },
        };

        var untrusted = await Should.ThrowAsync<ZaichikConnectionException>(ConnectAsync(server.Port, new ZaichikTlsOptions { TargetHost = "broker.example.com" }));
        await Should.ThrowAsync<ZaichikConnectionException>(ConnectAsync(server.Port, options));
        await using var pinned = await ConnectAsync(server.Port, Trusting(certificate) with { TargetHost = "broker.example.com" });

        untrusted.Message.ShouldContain("RemoteCertificateNameMismatch");
        untrusted.Message.ShouldContain("it does not name 'broker.example.com'");
        seen.ShouldNotBeNull("the callback must see the certificate");
        seen.Value.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch).ShouldBeTrue($"the callback saw {seen}");
        pinned.IsConnected.ShouldBeTrue();
    }

    [Fact]
    public async Task Plain_client_against_a_TLS_server_fails_with_a_connection_error_within_its_connect_timeout()
    {
        using var certificate = TestCertificate.CreateSelfSigned();
        await using var server = await TestServer.StartAsync(options => options with
        {
            Tls = new() { CertificatePath = certificate.WritePfx(), CertificatePassword = TestCertificate.PfxPassword },
        });
        var plain = ZaichikClientOptions.Default with { ConnectTimeout = ShortConnectTimeout };

        var error = await Should.ThrowAsync<ZaichikConnectionException>(
            ZaichikClient.ConnectAsync("127.0.0.1", server.Port, plain).AsTask().WaitAsync(ShortConnectTimeout + TimeSpan.FromSeconds(3)));

        error.Message.ShouldStartWith($"could not connect to Zaichik at 127.0.0.1:{server.Port}: ");
        await using var trusting = await ConnectAsync(server.Port, Trusting(certificate));
        trusting.IsConnected.ShouldBeTrue();
    }

    [Fact]
    public async Task TLS_client_against_a_plain_server_fails_cleanly_and_the_server_keeps_serving()
    {
        await using var server = await TestServer.StartAsync();

        var error = await Should.ThrowAsync<ZaichikConnectionException>(ConnectAsync(server.Port, new ZaichikTlsOptions()));

        error.Message.ShouldStartWith($"could not connect to Zaichik at 127.0.0.1:{server.Port}: TLS failed: ");
        error.Message.ShouldContain("the server may not have TLS enabled");
        var plain = await server.ConnectAsync();
        await RoundTripAsync(plain);
    }

    [Fact]
    public async Task TLS_client_against_a_server_that_never_answers_fails_at_its_connect_timeout()
    {
        var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        try
        {
            var port = ((IPEndPoint)silent.LocalEndpoint).Port;
            var options = new ZaichikClientOptions { ConnectTimeout = TimeSpan.FromMilliseconds(500), Tls = new ZaichikTlsOptions() };

            var error = await Should.ThrowAsync<ZaichikConnectionException>(
                ZaichikClient.ConnectAsync("127.0.0.1", port, options).AsTask().WaitAsync(Patience));

            error.Message.ShouldBe($"could not connect to Zaichik at 127.0.0.1:{port}: TLS failed: no answer to the TLS handshake within 0.5 s");
        }
        finally
        {
            silent.Stop();
        }
    }

    [Fact]
    public async Task Connection_that_never_starts_TLS_is_closed_after_the_handshake_timeout()
    {
        using var certificate = TestCertificate.CreateSelfSigned();
        await using var server = await TestServer.StartAsync(options => options with
        {
            Tls = new()
            {
                CertificatePath = certificate.WritePfx(),
                CertificatePassword = TestCertificate.PfxPassword,
                HandshakeTimeout = TimeSpan.FromMilliseconds(300),
            },
        });
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, server.Port);

        var read = await socket.ReceiveAsync(new byte[16], SocketFlags.None).WaitAsync(Patience);

        read.ShouldBe(0, "the server should close a connection that sends nothing once HandshakeTimeout has passed");
    }

    [Fact]
    public async Task Server_takes_part_in_no_ALPN_negotiation_because_it_speaks_no_HTTP()
    {
        using var certificate = TestCertificate.CreateSelfSigned();
        await using var server = await TestServer.StartAsync(options => options with
        {
            Tls = new() { CertificatePath = certificate.WritePfx(), CertificatePassword = TestCertificate.PfxPassword },
        });
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, server.Port);
        await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));

        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        }).WaitAsync(Patience);

        tls.NegotiatedApplicationProtocol.ShouldBe(default, "Kestrel would otherwise tell an HTTP client the broker speaks h2");
    }

    private static ZaichikTlsOptions Trusting(TestCertificate certificate) => new() { TrustedCertificate = certificate.Public };

    private static async Task<ZaichikClient> ConnectAsync(int port, ZaichikTlsOptions tls) =>
        await ZaichikClient.ConnectAsync("127.0.0.1", port, new ZaichikClientOptions { Tls = tls }).AsTask().WaitAsync(Patience);

    /// <summary>Create a retained topic, publish a small and a large message, read both back and commit them.</summary>
    private static async Task RoundTripAsync(ZaichikClient client)
    {
        var topic = "tls-" + Guid.NewGuid().ToString("N");
        var large = new string('z', 256 * 1024);
        await client.CreateTopicAsync(topic, new TopicOptions { RetentionTtl = TimeSpan.FromMinutes(5) });
        var first = await client.PublishAsync(topic, "over TLS", key: "k1");

        await using var reader = new MessageReader(await client.SubscribeAsync(topic, new SubscribeOptions { From = StartPosition.Retained }));
        var received = await reader.NextAsync();
        await client.CommitAsync(received);
        var second = await client.PublishAsync(topic, large);
        var receivedLarge = await reader.NextAsync();
        await client.CommitAsync(receivedLarge);

        received.PayloadText.ShouldBe("over TLS");
        received.KeyText.ShouldBe("k1");
        received.Sequence.ShouldBe(first.Sequence);
        receivedLarge.PayloadText.ShouldBe(large);
        receivedLarge.Sequence.ShouldBe(second.Sequence);
    }

    private static bool ChainsTo(X509Certificate2 root, X509Certificate? presented, X509Chain? built)
    {
        if (presented is null || built is null)
        {
            return false;
        }

        // Only what the server sent (and the root we trust) may complete the chain: the test certificates are in no store.
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        foreach (var element in built.ChainElements)
        {
            chain.ChainPolicy.ExtraStore.Add(element.Certificate);
        }

        using var leaf = X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
        return chain.Build(leaf) && chain.ChainElements.Count == 3;
    }
}
