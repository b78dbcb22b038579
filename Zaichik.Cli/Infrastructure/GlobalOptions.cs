using System.CommandLine;

namespace Zaichik.Cli.Infrastructure;

/// <summary>The options every verb takes (<see cref="Option.Recursive"/> on the root command).</summary>
internal sealed class GlobalOptions
{
    public const string DefaultServer = "127.0.0.1:8889";
    public const string DefaultAdmin = "http://127.0.0.1:8890";

    public GlobalOptions()
    {
        Server = new Option<string>("--server")
        {
            Description = $"The broker's host:port [env ZAICHIK_SERVER]",
            HelpName = "host:port",
            Recursive = true,
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ZAICHIK_SERVER") is { Length: > 0 } server ? server : DefaultServer,
        };
        Admin = new Option<string>("--admin")
        {
            Description = $"The broker's admin HTTP API [env ZAICHIK_ADMIN]",
            HelpName = "url",
            Recursive = true,
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ZAICHIK_ADMIN") is { Length: > 0 } admin ? admin : DefaultAdmin,
        };
        Token = new Option<string?>("--token")
        {
            Description = "The token sent in Hello and as 'Authorization: Bearer' to the admin API [env ZAICHIK_TOKEN]",
            Recursive = true,
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("ZAICHIK_TOKEN") is { Length: > 0 } token ? token : null,
        };
        Tls = new Option<bool>("--tls") { Description = "Connect to the broker with TLS", Recursive = true };
        TlsCa = new Option<FileInfo>("--tls-ca")
        {
            Description = "Trust the broker's certificate when it is, or is issued by, this certificate (PEM or DER); implies --tls",
            HelpName = "file",
            Recursive = true,
        }.AcceptExistingOnly();
        TlsInsecure = new Option<bool>("--tls-insecure")
        {
            Description = "Accept any broker certificate (testing only); implies --tls",
            Recursive = true,
        };
    }

    public Option<string> Server { get; }

    public Option<string> Admin { get; }

    public Option<string?> Token { get; }

    public Option<bool> Tls { get; }

    public Option<FileInfo> TlsCa { get; }

    public Option<bool> TlsInsecure { get; }

    public IEnumerable<Option> All => [Server, Admin, Token, Tls, TlsCa, TlsInsecure];

    public CliSettings Read(ParseResult parse)
    {
        var serverText = parse.GetValue(Server) ?? DefaultServer;
        if (!ServerAddress.TryParse(serverText, out var server))
        {
            throw CliException.Usage($"--server '{serverText}' is not host:port");
        }

        var adminText = parse.GetValue(Admin) ?? DefaultAdmin;
        if (!Uri.TryCreate(adminText, UriKind.Absolute, out var admin) || admin.Scheme is not ("http" or "https"))
        {
            throw CliException.Usage($"--admin '{adminText}' is not an http:// or https:// URL");
        }

        var tlsCa = parse.GetValue(TlsCa);
        var tlsInsecure = parse.GetValue(TlsInsecure);
        return new CliSettings(server, admin, parse.GetValue(Token), parse.GetValue(Tls) || tlsCa is not null || tlsInsecure, tlsCa, tlsInsecure);
    }
}

/// <summary>The global options' values for one run.</summary>
internal sealed record CliSettings(ServerAddress Server, Uri Admin, string? Token, bool Tls, FileInfo? TlsCa, bool TlsInsecure);
