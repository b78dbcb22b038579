using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Spectre.Console;
using Zaichik.Client;

namespace Zaichik.Cli.Infrastructure;

/// <summary>What a verb runs with: the output writers, a Spectre console on stdout, the global settings.</summary>
internal sealed class CliContext
{
    public CliContext(TextWriter stdout, TextWriter stderr, Func<Stream?> stdin, CliSettings settings, TimeProvider time)
    {
        Out = stdout;
        Error = stderr;
        Stdin = stdin;
        Settings = settings;
        Time = time;
        IsTerminal = ReferenceEquals(stdout, System.Console.Out) && !System.Console.IsOutputRedirected;
        Console = CreateConsole(stdout, IsTerminal);
    }

    public TextWriter Out { get; }

    public TextWriter Error { get; }

    /// <summary>Standard input when it is redirected (a pipe or a file), else null.</summary>
    public Func<Stream?> Stdin { get; }

    public CliSettings Settings { get; }

    public TimeProvider Time { get; }

    /// <summary>True when stdout is the process's console and not redirected: only then live progress, colors and ANSI.</summary>
    public bool IsTerminal { get; }

    public IAnsiConsole Console { get; }

    public ZaichikClientOptions ClientOptions()
    {
        var settings = Settings;
        ZaichikTlsOptions? tls = null;
        if (settings.Tls)
        {
            tls = new ZaichikTlsOptions();
            if (settings.TlsCa is { } caFile)
            {
                try
                {
                    tls = tls with { TrustedCertificate = X509CertificateLoader.LoadCertificateFromFile(caFile.FullName) };
                }
                catch (CryptographicException e)
                {
                    throw CliException.Usage($"--tls-ca '{caFile.FullName}' is not a certificate: {e.Message}");
                }
            }

            if (settings.TlsInsecure)
            {
                tls = tls with { RemoteCertificateValidation = static (_, _, _, _) => true };
            }
        }

        return ZaichikClientOptions.Default with
        {
            Host = settings.Server.Host,
            Port = settings.Server.Port,
            Token = settings.Token,
            Tls = tls,
        };
    }

    /// <summary>
    /// Connects to the broker. Nothing listening, or no answer within the connect timeout, is exit code 3 naming
    /// host:port; a handshake that fails (TLS refused, a TLS server reached without --tls) is exit code 1 with its reason.
    /// </summary>
    public async Task<ZaichikClient> ConnectAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await ZaichikClient.ConnectAsync(ClientOptions(), cancellationToken);
        }
        catch (ZaichikConnectionException e) when (e.InnerException is SocketException || e.Message.Contains("no answer within", StringComparison.Ordinal))
        {
            var reason = e.InnerException?.Message ?? e.Message[(e.Message.LastIndexOf(": ", StringComparison.Ordinal) + 2)..];
            throw CliException.Unreachable($"cannot reach the server at {Settings.Server}: {reason}");
        }
    }

    private static IAnsiConsole CreateConsole(TextWriter writer, bool terminal)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Detect : InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        if (!terminal)
        {
            // Redirected output is read by scripts and tests: wide enough that rows never wrap.
            console.Profile.Width = 240;
        }

        return console;
    }
}
