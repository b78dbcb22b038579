using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;
using Zaichik.Server.Sessions;
using Zaichik.Server.Sessions.Internal;
using Zaichik.Server.Security;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Transports;

/// <summary>Kestrel hands every accepted TCP connection to this handler, which runs one <see cref="ClientSession"/> for it.</summary>
internal sealed partial class ZaichikConnectionHandler(
    TopicRegistry registry,
    IOptions<ZaichikServerOptions> options,
    TokenAuthenticator authenticator,
    IdleConnectionMonitor monitor,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<ZaichikConnectionHandler> logger,
    Diagnostics.ServerCounters counters,
    Cluster.ClusterNode? cluster = null) : ConnectionHandler
{
    private int _open;

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var open = Interlocked.Increment(ref _open);
        var refusal = open > options.Value.MaxConnections ? ErrorCode.TooManyConnections : default(ErrorCode?);
        LogConnected(connection.ConnectionId, connection.RemoteEndPoint?.ToString());
        if (refusal is not null)
        {
            LogRefused(connection.ConnectionId, options.Value.MaxConnections);
        }

        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed, lifetime.ApplicationStopping);
        var session = new ClientSession(connection, registry, options.Value, authenticator, time, refusal, logger, counters, cluster);
        monitor.Add(session);
        try
        {
            await session.RunAsync(stopping.Token).ConfigureAwait(false);
        }
        finally
        {
            monitor.Remove(session);
            await session.DisposeAsync().ConfigureAwait(false);
            Interlocked.Decrement(ref _open);
            LogDisconnected(connection.ConnectionId);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Connection {ConnectionId} opened from {Remote}")]
    private partial void LogConnected(string connectionId, string? remote);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Connection {ConnectionId} refused: the server serves its maximum of {MaxConnections} connections")]
    private partial void LogRefused(string connectionId, int maxConnections);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Connection {ConnectionId} closed")]
    private partial void LogDisconnected(string connectionId);
}
