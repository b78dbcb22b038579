using System.Collections;
using Microsoft.Extensions.Options;
using Zaichik.Client;
using Zaichik.Server.Hosting;

namespace Zaichik.Tests.Security;

public sealed class TlsOptionsTests
{
    [Fact]
    public void Tls_is_off_unless_configured()
    {
        var options = Bind([]);

        options.Tls.ShouldBeNull();
        ZaichikClientOptions.Default.Tls.ShouldBeNull();
    }

    [Fact]
    public void Tls_options_bind_from_Zaichik__Tls__environment_variables_and_the_command_line()
    {
        var fromEnvironment = Bind([], new()
        {
            ["Zaichik__Tls__CertificatePath"] = "/etc/zaichik/broker.pem",
            ["Zaichik__Tls__KeyPath"] = "/etc/zaichik/broker.key",
            ["Zaichik__Tls__CertificatePassword"] = "s3cret",
            ["Zaichik__Tls__HandshakeTimeout"] = "00:00:03",
        });
        var fromArguments = Bind(["--Zaichik:Tls:CertificatePath", "broker.pfx"], new() { ["Zaichik__Tls__CertificatePath"] = "ignored.pfx" });

        fromEnvironment.Tls.ShouldBe(new ZaichikServerTlsOptions
        {
            CertificatePath = "/etc/zaichik/broker.pem",
            KeyPath = "/etc/zaichik/broker.key",
            CertificatePassword = "s3cret",
            HandshakeTimeout = TimeSpan.FromSeconds(3),
        });
        fromArguments.Tls.ShouldNotBeNull().CertificatePath.ShouldBe("broker.pfx");
        fromArguments.Tls.HandshakeTimeout.ShouldBe(TimeSpan.FromSeconds(10), "the default handshake timeout");
    }

    [Fact]
    public void Configured_pfx_certificate_validates_and_a_missing_one_is_reported()
    {
        using var certificate = TestCertificate.CreateSelfSigned();
        var pfx = certificate.WritePfx();

        var valid = Bind([], new() { ["Zaichik__Tls__CertificatePath"] = pfx, ["Zaichik__Tls__CertificatePassword"] = TestCertificate.PfxPassword });
        var missing = Bind([], new() { ["Zaichik__Tls__CertificatePath"] = pfx + ".missing" });

        valid.Validate().ShouldBeEmpty();
        missing.Validate().ShouldContain(problem => problem.StartsWith($"Tls:CertificatePath '{pfx}.missing' does not exist"));
    }

    [Fact]
    public async Task Missing_certificate_file_is_reported_by_Validate_and_stops_the_server()
    {
        var path = Path.Combine(Path.GetTempPath(), "zaichik-missing-" + Guid.NewGuid().ToString("N") + ".pfx");
        var options = ZaichikServerOptions.Default with { Port = 0, Tls = new() { CertificatePath = path } };

        var problems = options.Validate();
        var refusal = await Should.ThrowAsync<OptionsValidationException>(async () => await ZaichikServer.StartAsync(options));

        problems.ShouldBe([$"Tls:CertificatePath '{path}' does not exist (looked for {path})"]);
        refusal.Failures.ShouldContain(problems[0]);
    }

    [Fact]
    public void Empty_certificate_path_and_bad_handshake_timeout_are_reported()
    {
        var options = ZaichikServerOptions.Default with { Tls = new() { HandshakeTimeout = TimeSpan.Zero } };

        var problems = options.Validate();

        problems.ShouldContain(problem => problem.StartsWith("Tls:CertificatePath is not set"));
        problems.ShouldContain(problem => problem.StartsWith("Tls:HandshakeTimeout is 00:00:00"));
    }

    [Fact]
    public void Wrong_pfx_password_is_reported_without_revealing_either_password()
    {
        using var certificate = TestCertificate.CreateSelfSigned();
        var tls = new ZaichikServerTlsOptions { CertificatePath = certificate.WritePfx(), CertificatePassword = "not the password" };

        var problems = (ZaichikServerOptions.Default with { Tls = tls }).Validate();

        problems.ShouldHaveSingleItem().ShouldStartWith($"Tls:CertificatePath '{tls.CertificatePath}' could not be loaded as a PKCS#12 (PFX) file, and it is not PEM: ");
        problems[0].ShouldNotContain("not the password");
        problems[0].ShouldNotContain(TestCertificate.PfxPassword);
    }

    [Fact]
    public void File_that_is_no_certificate_is_reported()
    {
        using var certificate = TestCertificate.CreateSelfSigned();
        var path = Path.Combine(certificate.Folder, "garbage.pfx");
        File.WriteAllBytes(path, [0x30, 0x03, 0x02, 0x01, 0x00, 0x42, 0x42]);

        var problems = (ZaichikServerOptions.Default with { Tls = new() { CertificatePath = path } }).Validate();

        problems.ShouldHaveSingleItem().ShouldStartWith($"Tls:CertificatePath '{path}' could not be loaded as a PKCS#12 (PFX) file, and it is not PEM");
    }

    [Fact]
    public void Certificate_without_its_private_key_is_reported_for_pfx_and_pem()
    {
        using var certificate = TestCertificate.CreateSelfSigned();
        var pfxWithoutKey = certificate.WritePfx(withKey: false);
        var pemWithoutKey = certificate.WritePem().Certificate;

        var pfxProblems = (ZaichikServerOptions.Default with { Tls = new() { CertificatePath = pfxWithoutKey, CertificatePassword = TestCertificate.PfxPassword } }).Validate();
        var pemProblems = (ZaichikServerOptions.Default with { Tls = new() { CertificatePath = pemWithoutKey } }).Validate();

        pfxProblems.ShouldHaveSingleItem().ShouldBe($"Tls:CertificatePath '{pfxWithoutKey}' holds no private key (certificate CN=localhost); the server needs the certificate's key");
        pemProblems.ShouldHaveSingleItem().ShouldBe($"Tls:CertificatePath '{pemWithoutKey}' holds no private key (certificate CN=localhost); set Tls:KeyPath to its PEM key file");
    }

    [Fact]
    public void Pem_key_that_belongs_to_another_certificate_is_reported()
    {
        using var certificate = TestCertificate.CreateSelfSigned();
        using var another = TestCertificate.CreateSelfSigned();
        var path = certificate.WritePem().Certificate;
        var otherKey = another.WritePem().Key;

        var problems = (ZaichikServerOptions.Default with { Tls = new() { CertificatePath = path, KeyPath = otherKey } }).Validate();

        problems.ShouldHaveSingleItem().ShouldStartWith($"Tls:CertificatePath '{path}' could not be paired with its private key from '{otherKey}': ");
    }

    [Fact]
    public void Encrypted_pem_key_needs_the_password()
    {
        using var certificate = TestCertificate.CreateSelfSigned();
        var (path, key) = certificate.WritePem(keyPassword: "pem pass");

        var withoutPassword = (ZaichikServerOptions.Default with { Tls = new() { CertificatePath = path, KeyPath = key } }).Validate();
        var withPassword = (ZaichikServerOptions.Default with { Tls = new() { CertificatePath = path, KeyPath = key, CertificatePassword = "pem pass" } }).Validate();

        withoutPassword.ShouldHaveSingleItem().ShouldBe($"the private key in '{key}' is encrypted; set Tls:CertificatePassword");
        withPassword.ShouldBeEmpty();
    }

    [Fact]
    public void KeyPath_beside_a_pfx_is_reported()
    {
        using var certificate = TestCertificate.CreateSelfSigned();
        var pfx = certificate.WritePfx();
        var key = certificate.WritePem().Key;

        var problems = (ZaichikServerOptions.Default with { Tls = new() { CertificatePath = pfx, CertificatePassword = TestCertificate.PfxPassword, KeyPath = key } }).Validate();

        problems.ShouldHaveSingleItem().ShouldStartWith($"Tls:KeyPath is set, but '{pfx}' is a PKCS#12 file");
    }

    [Fact]
    public void Certificate_not_meant_for_servers_is_reported()
    {
        using var certificate = TestCertificate.CreateSelfSigned(serverAuthentication: false);

        var problems = (ZaichikServerOptions.Default with { Tls = new() { CertificatePath = certificate.WritePfx(), CertificatePassword = TestCertificate.PfxPassword } }).Validate();

        problems.ShouldHaveSingleItem().ShouldContain("the certificate CN=localhost is not for servers; its extended key usage lacks serverAuth");
    }

    [Fact]
    public void Password_never_appears_in_the_options_text()
    {
        var options = ZaichikServerOptions.Default with { Tls = new() { CertificatePath = "broker.pfx", CertificatePassword = "s3cret" } };

        var text = options.ToString();

        text.ShouldNotContain("s3cret");
        text.ShouldContain("CertificatePath = broker.pfx, CertificatePassword = ***");
    }

    [Fact]
    public async Task Client_refuses_an_empty_target_host_before_connecting()
    {
        var options = new ZaichikClientOptions { Tls = new() { TargetHost = " " } };

        var error = await Should.ThrowAsync<ArgumentException>(async () => await ZaichikClient.ConnectAsync("127.0.0.1", 1, options));

        error.Message.ShouldContain("Tls.TargetHost must not be empty");
    }

    private static ZaichikServerOptions Bind(string[] args, Dictionary<string, string>? environment = null) =>
        ZaichikConfiguration.BindOptions(ZaichikConfiguration.Build(args, new Hashtable(environment ?? [])));
}
