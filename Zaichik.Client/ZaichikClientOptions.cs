using System.Text;
using Microsoft.Extensions.Logging;
using Zaichik.Protocol;

namespace Zaichik.Client;

/// <summary>Limits and timings of one client connection. Start from <see cref="Default"/> and change with <c>with</c>.</summary>
public sealed record ZaichikClientOptions
{
    /// <summary>The defaults documented on each property.</summary>
    public static ZaichikClientOptions Default { get; } = new();

    /// <summary>The server's host name or address. Default <c>127.0.0.1</c>.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>The server's TCP port. Default 8889.</summary>
    public int Port { get; init; } = 8889;

    /// <summary>
    /// More servers of the same cluster, each as <c>host:port</c> (<c>[address]:port</c> for an IPv6 address). The client
    /// connects to <see cref="Host"/>:<see cref="Port"/> first; when a connection attempt fails, the next attempt goes to
    /// the next endpoint of [<see cref="Host"/>:<see cref="Port"/>, ...<see cref="Servers"/>], round robin. When a cluster
    /// node redirects a request to the node that leads its topic, the client connects there and keeps going there until a
    /// connection to it fails. Default empty: only <see cref="Host"/>:<see cref="Port"/>. Not used with
    /// <see cref="WebSocketUrl"/>.
    /// </summary>
    public IReadOnlyList<string> Servers { get; init; } = [];

    /// <summary>
    /// Whether and how the client reconnects after losing its connection. On by default: calls made meanwhile wait for
    /// the next connection (bounded by <see cref="RequestTimeout"/> and their cancellation token), subscriptions are
    /// restored and publishes whose Ack was lost are sent again (see <see cref="Idempotence"/>).
    /// </summary>
    public ZaichikReconnectOptions Reconnect { get; init; } = new();

    /// <summary>
    /// When true (the default), the client announces a producer id and numbers its publishes, so that a publish sent
    /// again after a reconnect, because its Ack was lost, is stored at most once and answered with the original's Ack.
    /// When false, such a publish fails with <see cref="ZaichikConnectionException"/> instead: it may or may not have
    /// been stored.
    /// </summary>
    public bool Idempotence { get; init; } = true;

    /// <summary>
    /// The largest header block a publish may carry, in bytes as encoded; larger ones are refused before sending. Default
    /// 16 KiB, the server's default <c>MaxHeadersSize</c>.
    /// </summary>
    public int MaxHeadersSize { get; init; } = 16 * 1024;

    /// <summary>Where the client logs connects, losses, reconnects and gaps. Default null: no logging.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>
    /// The largest frame body, in bytes, the client sends or accepts; publishes that would exceed it are refused
    /// before sending. Default <see cref="ProtocolLimits.DefaultMaxFrameSize"/>, at least 1024.
    /// </summary>
    public int MaxFrameSize { get; init; } = ProtocolLimits.DefaultMaxFrameSize;

    /// <summary>How long connecting and the Hello handshake may take. Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a request (create topic, publish, subscribe, unsubscribe) may wait for its answer before it fails
    /// with <see cref="ZaichikTimeoutException"/>. Default 30 s; <see cref="Timeout.InfiniteTimeSpan"/> waits forever.
    /// </summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long disposing waits for the server to answer what is in flight and close the connection after Close.
    /// Default 5 s.
    /// </summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How many requests may be unanswered at once; further requests wait for an answer to free a slot, which bounds
    /// the memory a fast publisher can pin. Default 10,000.
    /// </summary>
    public int MaxPendingRequests { get; init; } = 10_000;

    /// <summary>
    /// Bytes of encoded frames that may wait for the socket. Frames are batched into one send; once this many are
    /// waiting, callers wait until the sender takes them. Default 1 MiB, at least 4 KiB.
    /// </summary>
    public int SendBufferSize { get; init; } = 1024 * 1024;

    /// <summary>Size of each buffer the connection reads into. Default 64 KiB, at least 4 KiB.</summary>
    public int ReceiveBufferSize { get; init; } = 64 * 1024;

    /// <summary>
    /// The token sent in Hello, for a server that requires authentication. Default null (none). Never part of
    /// <see cref="object.ToString"/>.
    /// </summary>
    public string? Token { get; init; }

    /// <summary>
    /// How often the client sends a Ping when it has sent or received nothing else, which keeps a quiet connection
    /// inside the server's idle timeout and proves the server alive. The client pings at least three times per idle
    /// timeout the server announces, whatever this says. Default 15 s; <see cref="Timeout.InfiniteTimeSpan"/> turns
    /// heartbeats off (a quiet connection is then closed by the server's idle timeout, and a dead server is noticed
    /// only by <see cref="RequestTimeout"/>).
    /// </summary>
    public TimeSpan PingInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How many ping intervals in a row may pass with nothing at all from the server before the connection is
    /// declared dead: pending requests then fail and subscriptions end with <see cref="ZaichikConnectionException"/>,
    /// and <see cref="ZaichikClient.Disconnected"/> is raised. Default 2, at least 1.
    /// </summary>
    public int MaxPingsOutstanding { get; init; } = 2;

    /// <summary>The clock heartbeats run on. Default <see cref="TimeProvider.System"/>; tests pass a fake one.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// TLS for the connection, set when the server's listener has TLS on. The handshake runs within
    /// <see cref="ConnectTimeout"/>. Default null: plain TCP.
    /// </summary>
    public ZaichikTlsOptions? Tls { get; init; }

    /// <summary>
    /// Connect over WebSocket instead of TCP: <c>ws://host:port/path</c>, or <c>wss://</c> (TLS checked against the
    /// machine's trusted roots), the broker's <c>Listeners:WebSocket:Url</c>. The same protocol travels in binary WebSocket
    /// messages; everything else (requests, subscriptions, reconnecting, heartbeats) is the same. <see cref="Host"/>,
    /// <see cref="Port"/> and <see cref="Tls"/> are not used then. Default null: TCP.
    /// </summary>
    public Uri? WebSocketUrl { get; init; }

    /// <summary>Checks every value; throws an <see cref="ArgumentException"/> whose parameter name is the option's.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Host))
        {
            throw new ArgumentException("Host must be a host name or an address", nameof(Host));
        }

        if (Port is < 1 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(Port), Port, "Port must be 1 to 65535");
        }

        ArgumentNullException.ThrowIfNull(Servers, nameof(Servers));
        for (var i = 0; i < Servers.Count; i++)
        {
            if (!Internal.ServerEndpoint.TryParse(Servers[i], out _, out var problem))
            {
                throw new ArgumentException($"Servers[{i}] ('{Servers[i]}') must be host:port: {problem}", nameof(Servers));
            }
        }

        ArgumentNullException.ThrowIfNull(Reconnect, nameof(Reconnect));
        Reconnect.Validate();
        if (MaxHeadersSize < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxHeadersSize), MaxHeadersSize, "MaxHeadersSize must not be negative");
        }

        if (MaxFrameSize < 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxFrameSize), MaxFrameSize, "MaxFrameSize must be at least 1024 bytes");
        }

        RequirePositive(ConnectTimeout, nameof(ConnectTimeout));
        RequirePositive(CloseTimeout, nameof(CloseTimeout));
        if (RequestTimeout != Timeout.InfiniteTimeSpan)
        {
            RequirePositive(RequestTimeout, nameof(RequestTimeout));
        }

        if (MaxPendingRequests < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxPendingRequests), MaxPendingRequests, "MaxPendingRequests must be at least 1");
        }

        if (SendBufferSize < 4096)
        {
            throw new ArgumentOutOfRangeException(nameof(SendBufferSize), SendBufferSize, "SendBufferSize must be at least 4096 bytes");
        }

        if (ReceiveBufferSize < 4096)
        {
            throw new ArgumentOutOfRangeException(nameof(ReceiveBufferSize), ReceiveBufferSize, "ReceiveBufferSize must be at least 4096 bytes");
        }

        Tls?.Validate();

        if (WebSocketUrl is { } webSocketUrl && (!webSocketUrl.IsAbsoluteUri || webSocketUrl.Scheme is not ("ws" or "wss")))
        {
            throw new ArgumentException($"WebSocketUrl must be a ws:// or wss:// address; got '{webSocketUrl}'", nameof(WebSocketUrl));
        }

        if (WebSocketUrl is not null && Servers.Count > 0)
        {
            throw new ArgumentException("Servers lists TCP endpoints and cannot be combined with WebSocketUrl", nameof(Servers));
        }

        if (PingInterval != Timeout.InfiniteTimeSpan)
        {
            RequirePositive(PingInterval, nameof(PingInterval));
        }

        if (MaxPingsOutstanding < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxPingsOutstanding), MaxPingsOutstanding, "MaxPingsOutstanding must be at least 1");
        }

        if (Token is not null && Encoding.UTF8.GetByteCount(Token) > ProtocolLimits.MaxStringBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(Token), "Token is longer than a protocol string can carry");
        }

        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
    }

    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append("Host = ").Append(Host)
            .Append(", Port = ").Append(Port)
            .Append(", Servers = [").AppendJoin(", ", Servers ?? []).Append(']')
            .Append(", Reconnect = ").Append(Reconnect)
            .Append(", Idempotence = ").Append(Idempotence)
            .Append(", MaxHeadersSize = ").Append(MaxHeadersSize)
            .Append(", MaxFrameSize = ").Append(MaxFrameSize)
            .Append(", ConnectTimeout = ").Append(ConnectTimeout)
            .Append(", RequestTimeout = ").Append(RequestTimeout)
            .Append(", CloseTimeout = ").Append(CloseTimeout)
            .Append(", MaxPendingRequests = ").Append(MaxPendingRequests)
            .Append(", SendBufferSize = ").Append(SendBufferSize)
            .Append(", ReceiveBufferSize = ").Append(ReceiveBufferSize)
            .Append(", Token = ").Append(Token is null ? "none" : "(hidden)")
            .Append(", PingInterval = ").Append(PingInterval)
            .Append(", MaxPingsOutstanding = ").Append(MaxPingsOutstanding)
            .Append(", Tls = ").Append(Tls is null ? "off" : "on");
        return true;
    }

    internal static void RequirePositive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero || value.TotalMilliseconds > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive and at most {int.MaxValue} ms");
        }
    }
}
