using System.Net;
using System.Net.Sockets;
using System.Text;
using Zaichik.Cli;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Cli;

/// <summary>What one run of the zaichik command line printed and returned.</summary>
internal sealed record CliResult(int ExitCode, string Out, string Error)
{
    public string[] Lines => Out.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public string[] ErrorLines => Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Out}\n--- stderr ---\n{Error}";
}

/// <summary>Runs the zaichik command line in-process, as <c>zaichik</c> would from a shell with redirected output.</summary>
internal static class CliRunner
{
    /// <summary>No run waits longer than this; a hung verb fails its test instead of the whole run.</summary>
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    public static Task<CliResult> RunAsync(params string[] args) => RunAsync(args, stdin: null);

    public static async Task<CliResult> RunAsync(string[] args, byte[]? stdin, CancellationToken cancellationToken = default)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(Limit);
        var exitCode = await ZaichikCli.RunAsync(args, stdout, stderr, () => stdin is null ? null : new MemoryStream(stdin), TimeProvider.System, limit.Token);
        return new CliResult(exitCode, stdout.ToString(), stderr.ToString());
    }

    /// <summary>The <c>--server</c> switch for a test broker.</summary>
    public static string[] At(TestServer server) => ["--server", $"127.0.0.1:{server.Port}"];

    /// <summary>A loopback port nothing listens on (bound and released at once).</summary>
    public static int UnusedPort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    public static string Topic(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)];

    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}
