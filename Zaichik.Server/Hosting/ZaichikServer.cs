using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using Zaichik.Server.Admin;
using Zaichik.Server.Hosting.Internal;
using Zaichik.Server.Transports;
using Zaichik.Server.Storage;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Hosting;

/// <summary>
/// The broker as a host: Kestrel listening with the Zaichik connection handler, the topic registry and the
/// maintenance loops. <c>Program</c> runs it until Ctrl+C or SIGTERM; tests and benchmarks start one
/// in-process with <see cref="StartAsync"/>.
/// </summary>
public sealed partial class ZaichikServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _disposed;

    private ZaichikServer(WebApplication app, ZaichikServerOptions options)
    {
        _app = app;
        Options = options;
        var listeners = app.Services.GetRequiredService<BoundListeners>();
        Port = listeners.TcpPort;
        AdminUrl = listeners.AdminUrl;
    }

    public ZaichikServerOptions Options { get; }

    /// <summary>The port actually bound (useful when <see cref="ZaichikServerOptions.Port"/> is 0).</summary>
    public int Port { get; }

    public string Host => Options.Host;

    /// <summary>The admin listener's address as bound (e.g. <c>http://127.0.0.1:8890</c>), or null when it is off.</summary>
    public string? AdminUrl { get; }

    internal IServiceProvider Services => _app.Services;

    /// <summary>Starts a broker and returns once it accepts connections.</summary>
    public static async Task<ZaichikServer> StartAsync(
        ZaichikServerOptions options,
        TimeProvider? timeProvider = null,
        Action<ILoggingBuilder>? configureLogging = null,
        CancellationToken cancellationToken = default)
    {
        var app = Build(options, timeProvider ?? TimeProvider.System, configureLogging);
        var folderLock = app.Services.GetRequiredService<DataFolderLock>();
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // Taken before the host is disposed: its services are gone afterwards.
            try
            {
                await app.DisposeAsync().ConfigureAwait(false);
            }
            finally
            {
                folderLock.Dispose();
            }

            throw;
        }

        return new ZaichikServer(app, options);
    }

    /// <summary>Builds the host without starting it; throws <see cref="OptionsValidationException"/> for invalid options.</summary>
    public static WebApplication Build(ZaichikServerOptions options, TimeProvider timeProvider, Action<ILoggingBuilder>? configureLogging)
    {
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new OptionsValidationException(ZaichikServerOptions.SectionName, typeof(ZaichikServerOptions), problems);
        }

        // One broker per data folder: a second one fails here, before it touches anything.
        var folderLock = DataFolderLock.Acquire(options.DataPath);
        if (options.Cluster.Enabled)
        {
            try
            {
                options = ClusterDataFolders(options);
            }
            catch
            {
                folderLock.Dispose();
                throw;
            }
        }

        // Every connection's handshake uses this one copy; it is released when the broker stops.
        ServerCertificate? certificate;
        try
        {
            certificate = options.Tls is null ? null : ServerCertificate.Load(options.Tls);
        }
        catch
        {
            folderLock.Dispose();
            throw;
        }

        // Descriptors: storage gets a budget well inside the process's limit, and connections what is left of it, so
        // neither can run the process out of descriptors (the runtime aborts when it cannot load what it needs).
        var openFileLimit = FileBudget.ProcessOpenFileLimit();
        var reserve = 128 + (int)Math.Min(options.MaxConnections, openFileLimit / 4);
        var files = new FileBudget(options.Storage.MaxOpenFiles > 0 ? options.Storage.MaxOpenFiles : FileBudget.DefaultLimit(reserve));
        var connectionRoom = Math.Max(16, openFileLimit - files.Limit - 128);

        ThreadPool.GetMinThreads(out var workers, out var completionPorts);
        ThreadPool.SetMinThreads(Math.Max(workers, options.MinThreadPoolThreads), completionPorts);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        configureLogging?.Invoke(builder.Logging);

        builder.Services.AddSingleton(Microsoft.Extensions.Options.Options.Create(options));
        builder.Services.AddSingleton(timeProvider);
        builder.Services.AddSingleton(files);
        builder.Services.AddSingleton(folderLock);
        var listeners = new BoundListeners();
        builder.Services.AddSingleton(listeners);
        builder.Services.AddSingleton(listeners.Addresses);
        builder.Services.AddSingleton<Diagnostics.ServerCounters>();
        builder.Services.AddSingleton<Diagnostics.ServerMetrics>();
        builder.Services.AddSingleton<State.BrokerState>();
        builder.Services.AddSingleton<TopicRegistry>();
        builder.Services.AddSingleton<ZaichikConnectionHandler>();
        builder.Services.AddSingleton<Security.TokenAuthenticator>();
        builder.Services.AddSingleton<Sessions.Internal.IdleConnectionMonitor>();
        builder.Services.AddHostedService<BrokerLifecycle>();
        builder.Services.AddSingleton<TopicMaintenance>();
        builder.Services.AddHostedService(services => services.GetRequiredService<TopicMaintenance>());
        if (options.Cluster.Enabled)
        {
            builder.Services.AddSingleton<Cluster.ClusterNode>();
            builder.Services.AddHostedService(services => services.GetRequiredService<Cluster.ClusterNode>());
        }

        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = options.ShutdownTimeout);

        // Inline: a connection's frames are handled on the thread that completed its read, and its replies sent from
        // there, rather than one thread-pool hop to handle a read and another to send the replies.
        builder.WebHost.UseSockets(sockets => sockets.UnsafePreferInlineScheduling = options.InlineCompletions);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // Up to MaxConnections more are accepted only to be told TooManyConnections; past that Kestrel drops them.
            kestrel.Limits.MaxConcurrentConnections = Math.Min(2L * options.MaxConnections, connectionRoom);
            kestrel.Limits.MaxRequestBodySize = MaxAdminRequestBody;
            kestrel.Listen(ListenAddress(options.Host), options.Port, listen =>
            {
                listeners.Tcp = listen;
                if (certificate is not null)
                {
                    // TLS comes first in the connection's pipeline, so the handler reads and writes plain frames.
                    listen.UseHttps(certificate.ConnectionOptions(options.Tls!));
                }

                listen.UseConnectionHandler<ZaichikConnectionHandler>();
            });

            if (options.Listeners.WebSocket is { Enabled: true } webSocket)
            {
                var url = webSocket.ParsedUrl;
                kestrel.Listen(ListenAddress(url.Host.Trim('[', ']')), url.Port, listen =>
                {
                    listeners.WebSocket = listen;
                    listeners.WebSocketPath = webSocket.Path;
                    if (webSocket.IsTls)
                    {
                        listeners.WebSocketTls = true;
                        listen.UseHttps(certificate!.ConnectionOptions(options.Tls!));
                    }

                    Transports.WebSocketTransport.MarkConnections(listen);
                });
            }

            if (options.Admin.Enabled)
            {
                var url = options.Admin.ParsedUrl;
                kestrel.Listen(ListenAddress(url.Host.Trim('[', ']')), url.Port, listen =>
                {
                    listeners.Admin = listen;
                    if (url.Scheme == "https")
                    {
                        listeners.AdminTls = true;
                        listen.UseHttps(certificate!.ConnectionOptions(options.Tls!));
                    }
                });
            }
        });

        if (options.Admin.Enabled)
        {
            builder.Services.AddOpenTelemetry()
                .ConfigureResource(resource => resource.AddService("zaichik", serviceVersion: BrokerCommandLine.Version, autoGenerateServiceInstanceId: false))
                .WithMetrics(metrics => metrics.AddMeter(Diagnostics.ServerMetrics.Name).AddPrometheusExporter());
        }

        WebApplication app;
        try
        {
            app = builder.Build();
        }
        catch
        {
            folderLock.Dispose();
            throw;
        }

        var metrics = app.Services.GetRequiredService<Diagnostics.ServerMetrics>();
        metrics.Observe(app.Services.GetRequiredService<State.BrokerState>(), app.Services.GetRequiredService<Diagnostics.ServerCounters>());
        if (app.Services.GetService<Cluster.ClusterNode>() is { } clusterNode)
        {
            metrics.ObserveCluster(clusterNode);
        }
        app.Lifetime.ApplicationStarted.Register(() => listeners.Bound(options));
        if (options.Listeners.WebSocket.Enabled)
        {
            // First in the pipeline: the WebSocket listener's requests never reach the admin API, and the admin's never this.
            app.UseWebSocketListener(options.Listeners.WebSocket);
        }

        if (options.Admin.Enabled)
        {
            var adminHost = options.Admin.ParsedUrl.Host.Trim('[', ']');
            if (options.Tokens.Count == 0 && adminHost != "localhost" && !System.Net.IPAddress.IsLoopback(System.Net.IPAddress.Parse(adminHost)))
            {
                LogAdminOpen(app.Services.GetRequiredService<ILogger<ZaichikServer>>(), options.Admin.Url);
            }

            app.UseAdminAuthentication();
            app.MapPrometheusScrapingEndpoint("/metrics");
            app.MapAdminEndpoints(options.Admin);
        }

        if (certificate is not null)
        {
            certificate.LogUse(app.Services.GetRequiredService<ILogger<ZaichikServer>>(), timeProvider.GetUtcNow());
            app.Lifetime.ApplicationStopped.Register(certificate.Dispose);
        }

        return app;
    }

    /// <summary>
    /// A cluster node keeps its Raft log in <c>DataPath/cluster/raft</c>, its snapshots in <c>DataPath/cluster/snapshots</c>
    /// and its topics in <c>DataPath/cluster/view</c>. The topics are rebuilt at every start (the log and the snapshots
    /// are the record; the topics are their view): the view a previous run left is replaced by the newest whole snapshot's
    /// files (a damaged one is set aside, and the one before it is used), or cleared when there is none, and the Raft
    /// log replays the entries that follow (all of them without a snapshot). An entry is never applied twice to the same files.
    /// </summary>
    private static ZaichikServerOptions ClusterDataFolders(ZaichikServerOptions options)
    {
        var cluster = Path.Combine(Path.GetFullPath(options.DataPath), "cluster");
        var topics = Path.Combine(cluster, "view");
        var damaged = new List<string>();
        if (new Cluster.ClusterSnapshots(cluster).RestoreNewest(topics, damaged) is null && Directory.Exists(topics))
        {
            Directory.Delete(topics, recursive: true);
        }

        Directory.CreateDirectory(topics);
        Directory.CreateDirectory(Path.Combine(cluster, Cluster.ClusterNode.RaftFolder));
        return options with { DataPath = topics, ClusterDataPath = cluster, DamagedSnapshots = damaged };
    }

    /// <summary>Stops accepting, closes every connection, commits every log.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default) => _app.StopAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        var folderLock = _app.Services.GetRequiredService<DataFolderLock>();
        try
        {
            await _app.StopAsync().ConfigureAwait(false);
        }
        finally
        {
            try
            {
                await _app.DisposeAsync().ConfigureAwait(false);
            }
            finally
            {
                // Released by the lifecycle once the topics are closed; again here (it is idempotent) in case a stop that
                // ran out of time never got there, so the folder is never left locked by a stopped broker.
                folderLock.Dispose();
            }
        }
    }

    private static IPAddress ListenAddress(string host) =>
        host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(host);

    /// <summary>
    /// Binds and releases <paramref name="host"/>:<paramref name="port"/> as the listener will, so that a port already
    /// in use is reported before anything else starts. Throws the same <see cref="IOException"/> Kestrel would.
    /// </summary>
    internal static void ProbeListenAddress(string host, int port)
    {
        if (port == 0)
        {
            return;
        }

        var probe = new System.Net.Sockets.TcpListener(ListenAddress(host), port);
        try
        {
            probe.Start();
        }
        catch (System.Net.Sockets.SocketException exception) when (exception.SocketErrorCode == System.Net.Sockets.SocketError.AddressAlreadyInUse)
        {
            throw new IOException($"{host}:{port} is already in use", new Microsoft.AspNetCore.Connections.AddressInUseException(exception.Message, exception));
        }
        catch (System.Net.Sockets.SocketException exception)
        {
            throw new IOException($"cannot listen on {host}:{port}", exception);
        }
        finally
        {
            probe.Stop();
        }
    }

    /// <summary>The client port the listener bound, once started; <paramref name="requested"/> before that.</summary>
    internal static int BoundPort(WebApplication app, int requested) =>
        app.Services.GetRequiredService<BoundListeners>().Tcp is { } tcp && tcp.IPEndPoint is { Port: > 0 } bound ? bound.Port : requested;

    /// <summary>The admin listener's bound address once started, or null when it is off.</summary>
    internal static string? BoundAdminUrl(WebApplication app) => app.Services.GetRequiredService<BoundListeners>().AdminUrl;

    /// <summary>The WebSocket listener's bound URL (<c>ws://host:port/path</c>), or null when it is off.</summary>
    internal static string? BoundWebSocketUrl(WebApplication app) => app.Services.GetRequiredService<BoundListeners>().WebSocketUrl;

    [LoggerMessage(Level = LogLevel.Warning, Message = "The admin API listens on {Url}, beyond this machine, and no tokens are configured: anyone who reaches it can read every topic's messages and create topics; configure Tokens (one with Admin: true) or listen on 127.0.0.1")]
    private static partial void LogAdminOpen(ILogger logger, string url);

    /// <summary>Largest body the admin API reads (a topic to create is a few hundred bytes).</summary>
    private const long MaxAdminRequestBody = 64 * 1024;

}

/// <summary>The listeners as configured, and what they bound once the host started (port 0 picks a free one).</summary>
internal sealed class BoundListeners
{
    public Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions? Tcp { get; set; }

    public Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions? Admin { get; set; }

    public Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions? WebSocket { get; set; }

    public string WebSocketPath { get; set; } = "/";

    public bool WebSocketTls { get; set; }

    /// <summary>The WebSocket listener's bound address as clients name it, or null when it is off.</summary>
    public string? WebSocketUrl => WebSocket?.IPEndPoint is { } endPoint
        ? $"{(WebSocketTls ? "wss" : "ws")}://{(endPoint.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{endPoint.Address}]" : endPoint.Address.ToString())}:{endPoint.Port}{WebSocketPath}"
        : null;

    /// <summary>Whether the admin listener serves https.</summary>
    public bool AdminTls { get; set; }

    public State.ListenerAddresses Addresses { get; } = new();

    public int TcpPort => Tcp?.IPEndPoint?.Port ?? 0;

    /// <summary>The admin listener's bound address, or null when it is off.</summary>
    public string? AdminUrl => Admin?.IPEndPoint is { } endPoint
        ? $"{(AdminTls ? "https" : "http")}://{(endPoint.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{endPoint.Address}]" : endPoint.Address.ToString())}:{endPoint.Port}"
        : null;

    /// <summary>Fills in <see cref="Addresses"/> once the listeners are bound.</summary>
    public void Bound(ZaichikServerOptions options)
    {
        var all = new List<State.ListenerView> { new("tcp", $"{options.Host}:{TcpPort}", options.Tls is not null) };
        if (AdminUrl is { } admin)
        {
            all.Add(new State.ListenerView("admin", admin, AdminTls));
        }

        if (WebSocketUrl is { } webSocket)
        {
            all.Add(new State.ListenerView("websocket", webSocket, WebSocketTls));
        }

        Addresses.Set(all);
    }
}
