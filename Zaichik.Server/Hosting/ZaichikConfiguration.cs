using System.Collections;
using Microsoft.Extensions.Configuration;
using Serilog.Events;

namespace Zaichik.Server.Hosting;

/// <summary>
/// The broker's configuration stack, lowest to highest precedence: <c>appsettings.json</c> beside the
/// executable, environment variables (<c>Zaichik__MaxFrameSize</c>), the shortcuts <c>PORT</c>, <c>HOST</c>,
/// <c>ZAICHIK_DATA</c> and <c>ZAICHIK_LOG</c>, then command-line arguments (<c>--data</c>, <c>--port</c>,
/// <c>--host</c>, <c>--log</c>, or any <c>--Zaichik:Name value</c>).
/// </summary>
public static class ZaichikConfiguration
{
    private static readonly Dictionary<string, string> Shortcuts = new()
    {
        ["PORT"] = "Zaichik:Port",
        ["HOST"] = "Zaichik:Host",
        ["ZAICHIK_DATA"] = "Zaichik:DataPath",
        ["ZAICHIK_LOG"] = "Zaichik:LogLevel",
        ["ZAICHIK_ADMIN"] = "Zaichik:Admin:Url",
        ["ZAICHIK_WEBSOCKET"] = "Zaichik:Listeners:WebSocket:Url",
    };

    private static readonly Dictionary<string, string> Switches = new()
    {
        ["--data"] = "Zaichik:DataPath",
        ["--port"] = "Zaichik:Port",
        ["--host"] = "Zaichik:Host",
        ["--log"] = "Zaichik:LogLevel",
        ["--admin"] = "Zaichik:Admin:Url",
        ["--websocket"] = "Zaichik:Listeners:WebSocket:Url",
        ["--node"] = "Zaichik:Cluster:NodeId",
        ["--peers"] = "Zaichik:Cluster:Peers",
    };

    /// <summary>Builds the configuration from <paramref name="args"/> and <paramref name="environment"/> (the process's when null).</summary>
    public static IConfigurationRoot Build(string[] args, IDictionary? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariables();
        var variables = environment.Cast<DictionaryEntry>()
            .ToDictionary(entry => (string)entry.Key, entry => entry.Value?.ToString(), StringComparer.Ordinal);

        return new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true)
            .AddInMemoryCollection(variables
                .Where(variable => variable.Key.StartsWith(ZaichikServerOptions.SectionName + "__", StringComparison.OrdinalIgnoreCase))
                .Select(variable => KeyValuePair.Create(variable.Key.Replace("__", ":", StringComparison.Ordinal), variable.Value)))
            .AddInMemoryCollection(Shortcuts
                .Where(shortcut => !string.IsNullOrEmpty(variables.GetValueOrDefault(shortcut.Key)))
                .Select(shortcut => KeyValuePair.Create(shortcut.Value, variables[shortcut.Key])))
            .AddCommandLine(args, Switches)
            .Build();
    }

    /// <summary>The options the configuration describes; throws <see cref="InvalidOperationException"/> for values that do not parse.</summary>
    public static ZaichikServerOptions BindOptions(IConfiguration configuration) =>
        configuration.GetSection(ZaichikServerOptions.SectionName).Get<ZaichikServerOptions>(binder => binder.ErrorOnUnknownConfiguration = false)
        ?? ZaichikServerOptions.Default;

    /// <summary>The console log level (<c>Zaichik:LogLevel</c>, e.g. from <c>ZAICHIK_LOG=debug</c>); Information when unset.</summary>
    public static LogEventLevel LogLevel(IConfiguration configuration)
    {
        var text = configuration[ZaichikServerOptions.SectionName + ":LogLevel"];
        return text?.Trim().ToLowerInvariant() switch
        {
            null or "" or "info" or "information" => LogEventLevel.Information,
            "trace" or "verbose" => LogEventLevel.Verbose,
            "debug" => LogEventLevel.Debug,
            "warn" or "warning" => LogEventLevel.Warning,
            "error" => LogEventLevel.Error,
            "fatal" or "critical" => LogEventLevel.Fatal,
            _ => throw new InvalidOperationException($"unknown log level '{text}'; use trace, debug, information, warning, error or fatal"),
        };
    }
}
