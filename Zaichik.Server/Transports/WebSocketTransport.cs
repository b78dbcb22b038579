using System.IO.Pipelines;
using System.Net;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Zaichik.Server.Hosting;

namespace Zaichik.Server.Transports;

/// <summary>
/// The WebSocket transport: an HTTP listener whose one endpoint upgrades to WebSocket and hands the connection to the same
/// <see cref="ZaichikConnectionHandler"/> (and so the same session shell) as a TCP connection. The protocol's frames travel
/// in binary WebSocket messages: each flush of the session's writer is one message of whole frames, and what arrives is
/// read as one stream of bytes, so a frame may span messages. Nothing else is served on that listener.
/// </summary>
internal static partial class WebSocketTransport
{
    /// <summary>Set on every connection the WebSocket listener accepts, so HTTP requests from the others never reach it.</summary>
    private const string ListenerTag = "zaichik.websocket";

    /// <summary>The Kestrel connection middleware that marks this listener's connections.</summary>
    public static void MarkConnections(Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions listen) =>
        listen.Use(next => connection =>
        {
            connection.Items[ListenerTag] = true;
            return next(connection);
        });

    /// <summary>True for a connection this transport accepted (a browser's), whose clients are redirected to WebSocket URLs.</summary>
    internal static bool IsWebSocket(ConnectionContext connection) => connection is WebSocketConnection;

    /// <summary>Serves the WebSocket endpoint on the marked connections; everything else passes by.</summary>
    public static void UseWebSocketListener(this WebApplication app, WebSocketListenerOptions options)
    {
        app.UseWhen(
            context => context.Features.Get<IConnectionItemsFeature>()?.Items.ContainsKey(ListenerTag) == true,
            branch =>
            {
                branch.UseWebSockets(new WebSocketOptions { KeepAliveInterval = options.KeepAliveInterval });
                branch.Run(context => AcceptAsync(context, options));
            });
    }

    private static async Task AcceptAsync(HttpContext context, WebSocketListenerOptions options)
    {
        var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(WebSocketTransport).FullName!);
        if (!string.Equals(context.Request.Path.Value, options.Path, StringComparison.Ordinal))
        {
            await RefuseAsync(context, StatusCodes.Status404NotFound, $"this listener serves the Zaichik protocol over WebSocket at {options.Path} only").ConfigureAwait(false);
            return;
        }

        if (!context.WebSockets.IsWebSocketRequest)
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, "this endpoint speaks the Zaichik protocol over WebSocket: open a WebSocket to it").ConfigureAwait(false);
            return;
        }

        if (context.Request.Headers.Origin is { Count: > 0 } origins && !OriginAllowed(origins.ToString(), context.Request, options))
        {
            LogOriginRefused(logger, origins.ToString(), context.Connection.RemoteIpAddress?.ToString());
            await RefuseAsync(context, StatusCodes.Status403Forbidden, $"pages from {origins} may not connect: add it to Listeners:WebSocket:AllowedOrigins").ConfigureAwait(false);
            return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync().ConfigureAwait(false);
        await using var stream = WebSocketStream.Create(socket, WebSocketMessageType.Binary, ownsWebSocket: false);
        var connection = new WebSocketConnection(context, stream, socket);
        try
        {
            await context.RequestServices.GetRequiredService<ZaichikConnectionHandler>().OnConnectedAsync(connection).ConfigureAwait(false);
        }
        finally
        {
            await connection.CloseAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Same-origin (the page was served from this listener's own scheme, host and port), a configured origin, or any with <c>*</c>.</summary>
    internal static bool OriginAllowed(string origin, HttpRequest request, WebSocketListenerOptions options)
    {
        if (options.AllowedOrigins.Any(allowed => allowed == "*" || string.Equals(allowed.TrimEnd('/'), origin, StringComparison.OrdinalIgnoreCase)))
        {
            return true;
        }

        return Uri.TryCreate(origin, UriKind.Absolute, out var page)
            && string.Equals(page.Scheme, request.IsHttps ? "https" : "http", StringComparison.OrdinalIgnoreCase)
            && string.Equals(page.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase);
    }

    private static Task RefuseAsync(HttpContext context, int status, string detail) =>
        Admin.AdminEndpoints.Problem(status, status switch
        {
            StatusCodes.Status403Forbidden => "origin-not-allowed",
            StatusCodes.Status404NotFound => "not-found",
            _ => "websocket-required",
        }, status == StatusCodes.Status403Forbidden ? "Origin not allowed" : "Not a Zaichik WebSocket request", detail).ExecuteAsync(context);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A WebSocket from a page at {Origin} ({Remote}) was refused: that origin is not allowed (Listeners:WebSocket:AllowedOrigins)")]
    private static partial void LogOriginRefused(ILogger logger, string origin, string? remote);

    /// <summary>One accepted WebSocket as the session shell sees a connection: its bytes as a duplex pipe.</summary>
    private sealed class WebSocketConnection : ConnectionContext
    {
        private readonly WebSocket _socket;
        private readonly CancellationTokenSource _closed = new();
        private readonly CancellationTokenRegistration _aborted;
        private readonly Task _reading;

        public WebSocketConnection(HttpContext context, Stream stream, WebSocket socket)
        {
            _socket = socket;
            ConnectionId = "ws-" + context.Connection.Id;
            RemoteEndPoint = context.Connection.RemoteIpAddress is { } address ? new IPEndPoint(address, context.Connection.RemotePort) : null;
            LocalEndPoint = context.Connection.LocalIpAddress is { } local ? new IPEndPoint(local, context.Connection.LocalPort) : null;
            // The session cancels its pending read to end an idle connection; a cancelled WebSocket receive aborts the
            // socket, losing the Error the session then sends. So the socket is read by a pump of its own, into a pipe
            // whose read the session may cancel freely.
            var input = new System.IO.Pipelines.Pipe();
            _reading = PumpAsync(stream, input.Writer);
            Transport = new DuplexPipe(input.Reader, PipeWriter.Create(stream));
            if (context.Features.Get<ITlsHandshakeFeature>() is { } tls)
            {
                Features.Set(tls);
            }

            _aborted = context.RequestAborted.Register(static state => ((CancellationTokenSource)state!).Cancel(), _closed);
            ConnectionClosed = _closed.Token;
        }

        public override string ConnectionId { get; set; }

        public override IFeatureCollection Features { get; } = new FeatureCollection();

        public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();

        public override IDuplexPipe Transport { get; set; }

        public override void Abort(ConnectionAbortedException abortReason)
        {
            _socket.Abort();
            _closed.Cancel();
        }

        /// <summary>Ends the WebSocket with a close handshake when the peer is still there, within a second.</summary>
        public async Task CloseAsync()
        {
            try
            {
                await Transport.Output.CompleteAsync().ConfigureAwait(false);
                await Transport.Input.CompleteAsync().ConfigureAwait(false);
                if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                    await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "closed", timeout.Token).ConfigureAwait(false);

                    // The peer answers with its close, which ends the pump's read; a peer that does not is cut off.
                    await _reading.WaitAsync(timeout.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }
            }
            catch (Exception exception) when (exception is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
            {
                // The peer is gone: nothing to close politely.
            }
            finally
            {
                await _aborted.DisposeAsync().ConfigureAwait(false);
                _closed.Dispose();
            }
        }

        /// <summary>Copies what arrives on the WebSocket into <paramref name="input"/> until the peer closes or the socket fails.</summary>
        private static async Task PumpAsync(Stream stream, PipeWriter input)
        {
            Exception? failure = null;
            try
            {
                while (true)
                {
                    var read = await stream.ReadAsync(input.GetMemory(4096)).ConfigureAwait(false);
                    if (read == 0)
                    {
                        break;
                    }

                    input.Advance(read);
                    if ((await input.FlushAsync().ConfigureAwait(false)).IsCompleted)
                    {
                        break;
                    }
                }
            }
            catch (Exception exception) when (exception is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
            {
                failure = new IOException($"the WebSocket ended: {exception.Message}", exception);
            }

            await input.CompleteAsync(failure).ConfigureAwait(false);
        }

        private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
        {
            public PipeReader Input { get; } = input;

            public PipeWriter Output { get; } = output;
        }
    }
}
