using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Zaichik.Server.Hosting;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Networking;

/// <summary>Kestrel hands every accepted TCP connection to this handler, which runs one <see cref="ClientSession"/> for it.</summary>
internal sealed partial class ZaichikConnectionHandler(
    TopicRegistry registry,
    IOptions<ZaichikServerOptions> options,
    IHostApplicationLifetime lifetime,
    ILogger<ZaichikConnectionHandler> logger) : ConnectionHandler
{
    private int _open;

    /// <summary>Connections being served now.</summary>
    public int OpenConnections => Volatile.Read(ref _open);

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        Interlocked.Increment(ref _open);
        LogConnected(connection.ConnectionId, connection.RemoteEndPoint?.ToString());
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed, lifetime.ApplicationStopping);
        var session = new ClientSession(connection, registry, options.Value, logger);
        try
        {
            await session.RunAsync(stopping.Token).ConfigureAwait(false);
        }
        finally
        {
            await session.DisposeAsync().ConfigureAwait(false);
            Interlocked.Decrement(ref _open);
            LogDisconnected(connection.ConnectionId);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Connection {ConnectionId} opened from {Remote}")]
    private partial void LogConnected(string connectionId, string? remote);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Connection {ConnectionId} closed")]
    private partial void LogDisconnected(string connectionId);
}
