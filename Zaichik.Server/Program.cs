using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Serilog;
using Serilog.Events;
using Zaichik.Server.Hosting;

// Configuration, lowest to highest precedence: appsettings.json beside the executable, Zaichik__* environment
// variables, the PORT / HOST / ZAICHIK_DATA / ZAICHIK_LOG shortcuts, then command-line arguments.
var configuration = new ConfigurationBuilder()
    .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true)
    .AddEnvironmentVariables()
    .AddInMemoryCollection(EnvironmentShortcuts())
    .AddCommandLine(args, new Dictionary<string, string>
    {
        ["--data"] = "Zaichik:DataPath",
        ["--port"] = "Zaichik:Port",
        ["--host"] = "Zaichik:Host",
        ["--log"] = "Zaichik:LogLevel",
    })
    .Build();

var logLevel = ParseLogLevel(configuration["Zaichik:LogLevel"]);
using var serilog = new LoggerConfiguration()
    .MinimumLevel.Is(logLevel)
    .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
    .Enrich.FromLogContext()
    .WriteTo.Console(outputTemplate: "[{Timestamp:HH:mm:ss.fff} {Level:u3}] {SourceContext}: {Message:lj}{NewLine}{Exception}")
    .CreateLogger();

ZaichikServerOptions options;
try
{
    options = configuration.GetSection(ZaichikServerOptions.SectionName).Get<ZaichikServerOptions>() ?? ZaichikServerOptions.Default;
}
catch (InvalidOperationException exception)
{
    serilog.Fatal("Invalid configuration: {Reason}", exception.Message);
    return 2;
}

var problems = options.Validate();
if (problems.Count > 0)
{
    foreach (var problem in problems)
    {
        serilog.Fatal("Invalid configuration: {Problem}", problem);
    }

    return 2;
}

try
{
    var app = ZaichikServer.Build(options, TimeProvider.System, logging => logging.AddSerilog(serilog));
    await using (app.ConfigureAwait(false))
    {
        serilog.Information(
            "Zaichik listening on {Host}:{Port}, data in {DataPath}",
            options.Host,
            options.Port,
            Path.GetFullPath(options.DataPath));
        await app.RunAsync().ConfigureAwait(false);
    }

    serilog.Information("Zaichik stopped");
    return 0;
}
catch (Exception exception) when (exception is IOException or OptionsValidationException or InvalidOperationException)
{
    serilog.Fatal(exception, "Zaichik could not start: {Reason}", exception.Message);
    return 1;
}

static Dictionary<string, string?> EnvironmentShortcuts()
{
    var shortcuts = new Dictionary<string, string?>();
    Map("PORT", "Zaichik:Port");
    Map("HOST", "Zaichik:Host");
    Map("ZAICHIK_DATA", "Zaichik:DataPath");
    Map("ZAICHIK_LOG", "Zaichik:LogLevel");
    return shortcuts;

    void Map(string variable, string key)
    {
        if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value)
        {
            shortcuts[key] = value;
        }
    }
}

static LogEventLevel ParseLogLevel(string? text) => text?.Trim().ToLowerInvariant() switch
{
    null or "" or "info" or "information" => LogEventLevel.Information,
    "trace" or "verbose" => LogEventLevel.Verbose,
    "debug" => LogEventLevel.Debug,
    "warn" or "warning" => LogEventLevel.Warning,
    "error" => LogEventLevel.Error,
    "fatal" or "critical" => LogEventLevel.Fatal,
    _ => throw new ArgumentException($"unknown log level '{text}'; use trace, debug, information, warning, error or fatal"),
};
