using System.Collections;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Shouldly;
using Xunit;
using Zaichik.Client;
using Zaichik.Server.Cluster;
using Zaichik.Server.Hosting;
using Zaichik.Tests.Security;

namespace Zaichik.Tests.Cluster;

/// <summary>Mutual TLS between the nodes' Raft listeners (<c>Cluster:Tls</c>).</summary>
public sealed class ClusterTlsTests : IDisposable
{
    private static readonly TimeSpan ElectionDeadline = TimeSpan.FromSeconds(30);

    private readonly TestCertificate _authority = TestCertificate.CreateSelfSigned("Zaichik test cluster CA", authority: true);
    private readonly TestCertificate _stranger = TestCertificate.CreateSelfSigned("Someone else's CA", authority: true);
    private readonly string _authorityPem;

    public ClusterTlsTests() => _authorityPem = _authority.WritePem().Certificate;

    public void Dispose()
    {
        _authority.Dispose();
        _stranger.Dispose();
    }

    [Fact]
    public async Task Nodes_with_certificates_from_the_trusted_authority_elect_a_leader_and_replicate_over_TLS()
    {
        var nodes = Enumerable.Range(1, 3).Select(i => _authority.Issue($"n{i}")).ToArray();
        try
        {
            await using var cluster = await InProcessCluster.StartAsync(configure: (i, options) => options with { Tls = TlsFor(nodes[i]) });
            var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
            await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port);
            await client.CreateTopicAsync("secured", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
            for (var i = 0; i < 20; i++)
            {
                await client.PublishAsync("secured", $"m{i}");
            }

            for (var node = 0; node < cluster.Count; node++)
            {
                var messages = await ClusterReplicationTests.ReadAllAsync(cluster, node, "secured", expected: 20);
                messages.Select(message => message.Payload).ShouldBe(Enumerable.Range(0, 20).Select(i => $"m{i}"), $"node {node}");
            }

            cluster.Logs().ShouldContain("Raft connections use mutual TLS");
        }
        finally
        {
            foreach (var node in nodes)
            {
                node.Dispose();
            }
        }
    }

    [Fact]
    public async Task The_Raft_listener_refuses_a_peer_without_a_certificate_or_with_one_from_another_authority()
    {
        var nodes = Enumerable.Range(1, 3).Select(i => _authority.Issue($"n{i}")).ToArray();
        using var intruder = _stranger.Issue("n4");
        using var member = _authority.Issue("n5");
        try
        {
            await using var cluster = await InProcessCluster.StartAsync(configure: (i, options) => options with { Tls = TlsFor(nodes[i]) });
            await cluster.WaitForLeaderAsync(ElectionDeadline);
            var port = cluster.RaftPorts[0];

            // No client certificate: the handshake fails or the node drops the connection right after it.
            (await RefusedAsync(port, clientCertificate: null, TimeSpan.FromSeconds(15))).ShouldBeTrue();
            // A certificate the cluster's authority did not issue.
            (await RefusedAsync(port, intruder.WithKey, TimeSpan.FromSeconds(15))).ShouldBeTrue();
            // The control: a certificate from the cluster's authority completes the handshake and the connection stays open.
            (await RefusedAsync(port, member.WithKey, TimeSpan.FromSeconds(1))).ShouldBeFalse();
        }
        finally
        {
            foreach (var node in nodes)
            {
                node.Dispose();
            }
        }
    }

    [Fact]
    public void A_peer_is_accepted_only_when_its_certificate_chains_to_a_trusted_authority()
    {
        using var node = _authority.Issue("n1");
        using var other = _authority.Issue("n2");
        using var foreign = _stranger.Issue("n2");
        using var tls = TlsFor(node).Load();

        tls.Verify(this, other.Public, null, SslPolicyErrors.RemoteCertificateNameMismatch).ShouldBeTrue();
        tls.Verify(this, foreign.Public, null, SslPolicyErrors.None).ShouldBeFalse();
        tls.Verify(this, _stranger.Public, null, SslPolicyErrors.None).ShouldBeFalse();
        tls.Verify(this, null, null, SslPolicyErrors.RemoteCertificateNotAvailable).ShouldBeFalse();
    }

    [Fact]
    public void Bad_cluster_TLS_settings_are_refused_with_a_message_naming_them()
    {
        using var node = _authority.Issue("n1");
        var (certificate, key) = node.WritePem();
        var peers = "n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103";

        IEnumerable<string> Problems(ClusterTlsOptions tls) =>
            new ZaichikServerOptions { Cluster = new ClusterOptions { NodeId = "n1", Peers = peers, Tls = tls } }.Validate();

        Problems(new ClusterTlsOptions { CertificatePath = certificate, KeyPath = key, TrustedCaPath = _authorityPem }).ShouldBeEmpty();
        Problems(new ClusterTlsOptions { CertificatePath = certificate, KeyPath = key }).ShouldContain(p => p.StartsWith("Cluster:Tls:TrustedCaPath is not set"));
        Problems(new ClusterTlsOptions { CertificatePath = certificate, KeyPath = key, TrustedCaPath = "missing.pem" }).ShouldContain(p => p.Contains("Cluster:Tls:TrustedCaPath 'missing.pem' does not exist"));
        Problems(new ClusterTlsOptions { CertificatePath = certificate, KeyPath = key, TrustedCaPath = key }).ShouldContain(p => p.Contains("holds no PEM certificate"));
        Problems(new ClusterTlsOptions { CertificatePath = "nowhere.pfx", TrustedCaPath = _authorityPem }).ShouldContain(p => p.StartsWith("Cluster:Tls:CertificatePath 'nowhere.pfx' does not exist"));
        Problems(new ClusterTlsOptions { CertificatePath = certificate, TrustedCaPath = _authorityPem }).ShouldContain(p => p.StartsWith("Cluster:Tls:CertificatePath") && p.Contains("no private key"));

        var bound = ZaichikConfiguration.BindOptions(ZaichikConfiguration.Build([], new Hashtable
        {
            ["Zaichik__Cluster__NodeId"] = "n1",
            ["Zaichik__Cluster__Peers"] = peers,
            ["Zaichik__Cluster__Tls__CertificatePath"] = certificate,
            ["Zaichik__Cluster__Tls__KeyPath"] = key,
            ["Zaichik__Cluster__Tls__TrustedCaPath"] = _authorityPem,
        }));
        bound.Cluster.Tls.ShouldNotBeNull().TrustedCaPath.ShouldBe(_authorityPem);
        bound.Validate().ShouldBeEmpty();

        // The admin API shows the settings as JSON, and logs print records: the password appears in neither.
        var withPassword = bound.Cluster with { Tls = bound.Cluster.Tls with { CertificatePassword = "hunter2-secret" } };
        System.Text.Json.JsonSerializer.Serialize(withPassword).ShouldNotContain("hunter2-secret");
        withPassword.ToString().ShouldNotContain("hunter2-secret");
    }

    private ClusterTlsOptions TlsFor(TestCertificate node)
    {
        var (certificate, key) = node.WritePem();
        return new ClusterTlsOptions { CertificatePath = certificate, KeyPath = key, TrustedCaPath = _authorityPem };
    }

    /// <summary>
    /// True when the Raft listener refuses a TLS client presenting <paramref name="clientCertificate"/> within
    /// <paramref name="wait"/>: the handshake fails, or (TLS 1.3 checks the client's certificate after the client's side
    /// has finished) the first read ends with an alert or a closed connection. False when the connection stays open.
    /// </summary>
    private static async Task<bool> RefusedAsync(int port, X509Certificate2? clientCertificate, TimeSpan wait)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port);
        await using var ssl = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
            ClientCertificates = clientCertificate is null ? null : [clientCertificate],
            LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate!,
        };
        using var timeout = new CancellationTokenSource(wait);
        try
        {
            await ssl.AuthenticateAsClientAsync(options, timeout.Token);
            return await ssl.ReadAsync(new byte[1], timeout.Token) == 0;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            return false;
        }
        catch (Exception failure) when (failure is AuthenticationException or IOException or SocketException)
        {
            return true;
        }
    }
}
