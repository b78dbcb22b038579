using Zaichik.Tests.EndToEnd;
using Zaichik.Tests.Security;
using static Zaichik.Tests.Cli.CliRunner;

namespace Zaichik.Tests.Cli;

/// <summary>--tls, --tls-ca and --tls-insecure against a broker serving TLS.</summary>
public sealed class TlsCliTests
{
    [Fact]
    public async Task Tls_ca_or_tls_insecure_connect_and_an_untrusted_or_plain_connection_fails_with_exit_code_1()
    {
        using var certificate = TestCertificate.CreateSelfSigned();
        var (certificatePath, keyPath) = certificate.WritePem();
        await using var server = await TestServer.StartAsync(o => o with { Tls = new() { CertificatePath = certificatePath, KeyPath = keyPath } });
        var topic = Topic("tls");
        (await RunAsync([.. At(server), "--tls-ca", certificatePath, "create", topic, "--retention", "1h"])).ExitCode.ShouldBe(0);

        var trusted = await RunAsync([.. At(server), "--tls-ca", certificatePath, "pub", topic, "over tls"]);
        var insecure = await RunAsync([.. At(server), "--tls-insecure", "sub", topic, "--count", "1"]);
        var untrusted = await RunAsync([.. At(server), "--tls", "pub", topic, "refused"]);
        var plain = await RunAsync([.. At(server), "pub", topic, "refused"]);

        trusted.ExitCode.ShouldBe(0, trusted.ToString());
        insecure.ExitCode.ShouldBe(0, insecure.ToString());
        insecure.Lines.ShouldBe(["1\tover tls"], insecure.ToString());
        untrusted.ExitCode.ShouldBe(1, untrusted.ToString());
        untrusted.ErrorLines.Length.ShouldBe(1, untrusted.ToString());
        plain.ExitCode.ShouldBe(1, plain.ToString());
        plain.ErrorLines.Length.ShouldBe(1, plain.ToString());
        plain.ErrorLines[0].ShouldContain("closed the connection during the handshake");
    }
}
