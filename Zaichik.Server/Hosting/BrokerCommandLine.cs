using System.Reflection;

namespace Zaichik.Server.Hosting;

/// <summary>
/// What the broker's command line asks for: run (with the arguments for the configuration), print help, print the
/// version, or stop with an error naming the argument it does not know. The configuration itself is read by
/// <see cref="ZaichikConfiguration"/>; this only refuses what it would silently ignore.
/// </summary>
public sealed record BrokerCommandLine(BrokerCommand Command, string? Error = null)
{
    private static readonly string[] ValueSwitches = ["--data", "--port", "--host", "--log", "--admin", "--websocket", "--node", "--peers"];

    /// <summary>The version the broker reports: its assembly's informational version.</summary>
    public static string Version { get; } =
        typeof(BrokerCommandLine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "unknown";

    /// <summary>The text <c>--help</c> prints.</summary>
    public static string Help { get; } = $"""
        Zaichik {Version}: a topic broker with retention, key-window dedup and durable consumers.

        Usage: Zaichik.Server [options]

        Options:
          --port <port>            TCP port to listen on (default 8889; 0 picks a free one). Also PORT.
          --host <address>         Address to listen on (default 127.0.0.1; 0.0.0.0 for all). Also HOST.
          --data <folder>          Data folder (default ./data). Also ZAICHIK_DATA.
          --log <level>            trace, debug, information, warning, error or fatal. Also ZAICHIK_LOG.
          --admin <url>            Admin HTTP listener: API, /metrics, /healthz, /readyz and the dashboard
                                   (default http://127.0.0.1:8890; off turns it off). Also ZAICHIK_ADMIN.
          --websocket <url>        WebSocket listener for browsers, e.g. http://127.0.0.1:8891/ws (default off).
                                   Also ZAICHIK_WEBSOCKET.
          --node <id>              Cluster mode: this node's id among --peers. Also Zaichik:Cluster:NodeId.
          --peers <list>           Cluster mode: every node as id=host:port (its Raft listener), comma separated,
                                   e.g. n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103. Also Zaichik:Cluster:Peers.
          --Zaichik:<Name> <value> Any setting of the README's Configuration table, e.g. --Zaichik:Durability Always
                                   or --Zaichik:Storage:PageSizeBits 16. Also Zaichik__<Name> environment variables
                                   and appsettings.json beside the binary.
          --version                Print the version and exit.
          -h, --help               Print this help and exit.

        Exit codes: 0 stopped cleanly, 1 failed while running, 2 invalid command line or setting,
        3 data folder in use by another broker, 4 cannot listen (address in use or not available).
        """;

    /// <summary>Reads <paramref name="args"/>.</summary>
    public static BrokerCommandLine Parse(IReadOnlyList<string> args)
    {
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg is "-h" or "--help" or "-?" or "/?")
            {
                return new(BrokerCommand.Help);
            }

            if (arg == "--version")
            {
                return new(BrokerCommand.Version);
            }

            var name = arg.Split('=', 2)[0];
            var inline = name.Length < arg.Length;
            if (ValueSwitches.Contains(name) || (name.StartsWith("--Zaichik:", StringComparison.OrdinalIgnoreCase) && name.Length > "--Zaichik:".Length))
            {
                if (!inline && (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal)))
                {
                    return new(BrokerCommand.Error, $"option '{name}' needs a value; see --help");
                }

                i += inline ? 0 : 1;
                continue;
            }

            return new(BrokerCommand.Error, arg.StartsWith('-')
                ? $"unknown option '{name}'; see --help"
                : $"unexpected argument '{arg}'; see --help");
        }

        return new(BrokerCommand.Run);
    }
}

/// <summary>What the broker's command line asks for.</summary>
public enum BrokerCommand
{
    /// <summary>Run the broker.</summary>
    Run,

    /// <summary>Print the help and exit 0.</summary>
    Help,

    /// <summary>Print the version and exit 0.</summary>
    Version,

    /// <summary>Print the error and exit 2.</summary>
    Error,
}
