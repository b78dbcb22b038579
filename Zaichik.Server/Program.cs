using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Options;
using Serilog;
using Zaichik.Server.Hosting;

switch (BrokerCommandLine.Parse(args))
{
    case { Command: BrokerCommand.Help }:
        Console.WriteLine(BrokerCommandLine.Help);
        return 0;
    case { Command: BrokerCommand.Version }:
        Console.WriteLine($"Zaichik {BrokerCommandLine.Version}");
        return 0;
    case { Command: BrokerCommand.Error, Error: var error }:
        Console.Error.WriteLine($"Zaichik: {error}");
        return 2;
}

var configuration = ZaichikConfiguration.Build(args);

ZaichikServerOptions options;
Serilog.Events.LogEventLevel logLevel;
try
{
    options = ZaichikConfiguration.BindOptions(configuration);
    logLevel = ZaichikConfiguration.LogLevel(configuration);
}
catch (InvalidOperationException exception)
{
    Console.Error.WriteLine($"Invalid configuration: {exception.Message}");
    return 2;
}

using var serilog = new LoggerConfiguration()
    .MinimumLevel.Is(logLevel)
    .MinimumLevel.Override("Microsoft", Serilog.Events.LogEventLevel.Warning)
    .Enrich.FromLogContext()
    .WriteTo.Console(outputTemplate: "[{Timestamp:HH:mm:ss.fff} {Level:u3}] {SourceContext}: {Message:lj}{NewLine}{Exception}")
    .CreateLogger();
var log = serilog.ForContext("SourceContext", "Zaichik");

var problems = options.Validate();
if (problems.Count > 0)
{
    foreach (var problem in problems)
    {
        log.Fatal("Invalid configuration: {Problem}", problem);
    }

    return 2;
}

// Socket completions run on the socket engine's threads (read once, when the first socket is made); with
// InlineCompletions the broker then handles a request and sends its reply without a thread hop.
if (options.InlineCompletions && Environment.GetEnvironmentVariable(InlineSocketCompletions) is null)
{
    Environment.SetEnvironmentVariable(InlineSocketCompletions, "1");
}

try
{
    WebApplication app;
    try
    {
        app = ZaichikServer.Build(options, TimeProvider.System, logging => logging.AddSerilog(serilog));
    }
    catch (Zaichik.Server.Storage.DataFolderInUseException inUse)
    {
        Console.Error.WriteLine($"Zaichik cannot start: {inUse.Message}");
        return 3;
    }

    await using (app.ConfigureAwait(false))
    {
        string? listening = null;
        var switchName = "--port";
        // Said only once the listener is bound, so whoever waits for this line can connect at once.
        app.Lifetime.ApplicationStarted.Register(() => log.Information(
            "Zaichik {Version} listening on {Host}:{Port} ({Transport}), admin {Admin}, websocket {WebSocket}, data in {DataPath}; durability {Durability}, tokens {Auth}, auto-create {AutoCreate}",
            BrokerCommandLine.Version,
            options.Host,
            ZaichikServer.BoundPort(app, options.Port),
            options.Tls?.CertificatePath is null ? "TCP" : "TLS",
            ZaichikServer.BoundAdminUrl(app) ?? "off",
            ZaichikServer.BoundWebSocketUrl(app) ?? "off",
            Path.GetFullPath(options.DataPath),
            options.Durability,
            options.Tokens.Count == 0 ? "off (anyone who reaches the port may publish and subscribe)" : $"on ({options.Tokens.Count})",
            options.AutoCreateTopics ? "on" : "off"));
        try
        {
            // Tried first, so that a taken port is one line, not the web host's start-up failure with its stack trace.
            listening = $"{options.Host}:{options.Port}";
            ZaichikServer.ProbeListenAddress(options.Host, options.Port);
            if (options.Admin.Enabled)
            {
                var admin = options.Admin.ParsedUrl;
                listening = $"{admin.Host}:{admin.Port}";
                switchName = "--admin";
                ZaichikServer.ProbeListenAddress(admin.Host.Trim('[', ']'), admin.Port);
            }

            if (options.Listeners.WebSocket.Enabled)
            {
                var webSocket = options.Listeners.WebSocket.ParsedUrl;
                listening = $"{webSocket.Host}:{webSocket.Port}";
                switchName = "--websocket";
                ZaichikServer.ProbeListenAddress(webSocket.Host.Trim('[', ']'), webSocket.Port);
            }

            listening = null;
            await app.RunAsync().ConfigureAwait(false);
        }
        catch (IOException bind) when (bind.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException || bind.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
        {
            Console.Error.WriteLine($"Zaichik cannot start: {listening ?? $"{options.Host}:{options.Port}"} is already in use (another broker or program listens there); choose another with {switchName}");
            return 4;
        }
        catch (IOException bind) when (bind.InnerException is System.Net.Sockets.SocketException)
        {
            Console.Error.WriteLine($"Zaichik cannot start: cannot listen on {listening ?? $"{options.Host}:{options.Port}"}: {bind.InnerException.Message}");
            return 4;
        }
    }

    log.Information("Zaichik stopped");
    return 0;
}
catch (Exception exception) when (exception is IOException or OptionsValidationException or InvalidOperationException)
{
    log.Fatal(exception, "Zaichik could not start: {Reason}", exception.Message);
    return 1;
}

/// <summary>The broker's entry point.</summary>
internal static partial class Program
{
    /// <summary>The runtime's switch for running socket completions on the socket engine's threads.</summary>
    private const string InlineSocketCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
}
