using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Options;
using Serilog;
using Zaichik.Server.Hosting;

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
        // Said only once the listener is bound, so whoever waits for this line can connect at once.
        app.Lifetime.ApplicationStarted.Register(() =>
            log.Information("Zaichik listening on {Host}:{Port}, data in {DataPath}", options.Host, options.Port, Path.GetFullPath(options.DataPath)));
        await app.RunAsync().ConfigureAwait(false);
    }

    log.Information("Zaichik stopped");
    return 0;
}
catch (Exception exception) when (exception is IOException or OptionsValidationException or InvalidOperationException)
{
    log.Fatal(exception, "Zaichik could not start: {Reason}", exception.Message);
    return 1;
}
