// Notifications: a small web app that pushes each notification to every device (browser tab) a user has open, through
// the broker's WebSocket listener and the TypeScript client. Open http://127.0.0.1:5080/?user=alice in two tabs, send a
// notification from either, and both show it; close both, send another, open one again, and it shows what was sent
// meanwhile; leave one unacknowledged for AckWait (10 s) and it is shown again.
// Run a broker with its WebSocket listener first:
//   dotnet run --project Zaichik.Server -- --websocket http://127.0.0.1:8891/ws --Zaichik:Listeners:WebSocket:AllowedOrigins:0 http://127.0.0.1:5080
// build the TypeScript client once (cd clients/typescript && npm ci && npm run build), then:
//   dotnet run --project Zaichik.Examples/Notifications
// ZAICHIK_BROKER (host:port, default 127.0.0.1:8889), ZAICHIK_WEBSOCKET_URL (default ws://127.0.0.1:8891/ws) and
// ASPNETCORE_URLS (default http://127.0.0.1:5080) choose where things are.
using Zaichik.Examples.Notifications;

var broker = Environment.GetEnvironmentVariable("ZAICHIK_BROKER") is { Length: > 0 } b ? b : "127.0.0.1:8889";
var webSocketUrl = Environment.GetEnvironmentVariable("ZAICHIK_WEBSOCKET_URL") is { Length: > 0 } w ? w : "ws://127.0.0.1:8891/ws";
var urls = Environment.GetEnvironmentVariable("ASPNETCORE_URLS") is { Length: > 0 } u ? u : "http://127.0.0.1:5080";
var options = new NotificationsOptions
{
    BrokerHost = broker.Split(':')[0],
    BrokerPort = int.Parse(broker.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture),
    WebSocketUrl = webSocketUrl,
};

await using var app = NotificationsApp.Build(options, urls);
if (options.ClientScripts is null)
{
    Console.Error.WriteLine("The TypeScript client is not built: run `npm ci && npm run build` in clients/typescript first.");
    return 1;
}

await app.RunAsync();
return 0;
