// Worker: a generic-host app that registers the Zaichik client from configuration (AddZaichikClient), a health check
// of its connection and a ZaichikConsumer<OrderPlaced>, then publishes three typed orders and waits until the consumer
// has processed and committed them.
// Run a server first (dotnet run --project Zaichik.Server), then: dotnet run --project Zaichik.Examples/Worker
// HOST and PORT choose the server (default 127.0.0.1:8889; they override Zaichik:Host/Port of appsettings.json).
// Exits 0 when the three orders were processed within 10 s, 1 otherwise.
using Zaichik.Examples.Worker;

var host = Environment.GetEnvironmentVariable("HOST") is { Length: > 0 } hostVariable ? hostVariable : "127.0.0.1";
var port = int.TryParse(Environment.GetEnvironmentVariable("PORT"), out var portVariable) ? portVariable : 8889;
return await WorkerExample.RunAsync(host, port, Console.Out, Console.Error, CancellationToken.None);
