using Microsoft.Extensions.Logging;
using Zaichik.Client.Internal;
using Zaichik.Protocol;

namespace Zaichik.Client;

/// <summary>
/// Where the client connects, and what it does when a cluster node turns a request away. The endpoints are
/// [Host:Port, ...Servers]: attempts go round robin, moving on when one fails. A Redirect names the leader of the
/// request's topic; the client goes there next (at once the first time, after the reconnect backoff when redirects
/// follow each other without a request succeeding in between) and stays with it until a connection to it fails. NoLeader
/// sends it to the next endpoint after the backoff. Either way the connection is closed gracefully (the node answers what
/// it already read) and the requests it did not carry out stay pending and go out again on the next connection.
/// </summary>
public sealed partial class ZaichikClient
{
    // Guarded by _admission: the round robin's position, the leader a redirect named, and the delay a reroute asked for
    // the next attempt.
    private ServerEndpoint[] _endpoints = [];
    private int _nextEndpoint;
    private ServerEndpoint? _leader;
    private TimeSpan? _rerouteDelay;
    private string _currentEndpoint = string.Empty;

    // Reroutes in a row without an answered request of the application in between (nor a quiet spell, see Reroute),
    // and when the last one was (Environment.TickCount64).
    private int _rerouteStreak;
    private long _lastRerouteMs;

    /// <summary>
    /// Raised when a cluster node did not carry out a request because it does not lead the request's topic (a Redirect)
    /// or knows no leader now (NoLeader): the client then leaves that node for the leader (or the next server) and sends
    /// the request again there. Raised on the read loop; keep handlers short.
    /// </summary>
    public event EventHandler<ZaichikRedirect>? Redirected;

    /// <summary>
    /// The <c>host:port</c> of the server in use, or of the one being tried while the client connects (the WebSocket URL
    /// with <see cref="ZaichikClientOptions.WebSocketUrl"/>).
    /// </summary>
    public string CurrentEndpoint => Volatile.Read(ref _currentEndpoint);

    private void InitializeEndpoints()
    {
        var endpoints = new ServerEndpoint[1 + Options.Servers.Count];
        endpoints[0] = new ServerEndpoint(Options.Host, Options.Port);
        for (var i = 0; i < Options.Servers.Count; i++)
        {
            // Validated with the options.
            ServerEndpoint.TryParse(Options.Servers[i], out endpoints[i + 1], out _);
        }

        _endpoints = endpoints;
        _currentEndpoint = Options.WebSocketUrl?.ToString() ?? endpoints[0].ToString();
    }

    /// <summary>The endpoint the next attempt goes to: the leader a redirect named, else the round robin's; it becomes <see cref="CurrentEndpoint"/>.</summary>
    private ServerEndpoint TargetEndpoint()
    {
        lock (_admission)
        {
            var endpoint = _leader ?? _endpoints[_nextEndpoint];
            if (Options.WebSocketUrl is null || endpoint.WebSocket is not null)
            {
                Volatile.Write(ref _currentEndpoint, endpoint.ToString());
            }
            else
            {
                Volatile.Write(ref _currentEndpoint, Options.WebSocketUrl.ToString());
            }

            return endpoint;
        }
    }

    /// <summary>An attempt to <paramref name="endpoint"/> failed: the next goes to the round robin (from the leader) or its next endpoint.</summary>
    private void EndpointFailed(ServerEndpoint endpoint)
    {
        lock (_admission)
        {
            if (_leader is { } leader)
            {
                if (leader == endpoint)
                {
                    _leader = null;
                }
            }
            else if (_endpoints[_nextEndpoint] == endpoint)
            {
                _nextEndpoint = (_nextEndpoint + 1) % _endpoints.Length;
            }
        }
    }

    /// <summary>The delay a reroute asked for the next attempt, once; null when none did.</summary>
    private TimeSpan? TakeReroute()
    {
        lock (_admission)
        {
            var delay = _rerouteDelay;
            _rerouteDelay = null;
            return delay;
        }
    }

    /// <summary>An application's request was answered: the next redirect starts a new series (no delay).</summary>
    private void RequestSucceeded()
    {
        if (Volatile.Read(ref _rerouteStreak) != 0)
        {
            Volatile.Write(ref _rerouteStreak, 0);
        }
    }

    /// <summary>A Redirect from <paramref name="connection"/> (on its read loop).</summary>
    private void OnRedirect(ClientConnection connection, in RedirectFrame redirect)
    {
        if (redirect.RequestId is { } requestId)
        {
            _requests.NotCarriedOut(requestId);
        }

        ServerEndpoint? leader = null;
        if (Options.WebSocketUrl is not null)
        {
            // Over WebSocket a node names the leader's WebSocket URL; anything else (a node without one): the client
            // reconnects to its own URL (a load balancer in front of the cluster may send it elsewhere), after the backoff.
            if (Uri.TryCreate(redirect.Endpoint, UriKind.Absolute, out var url) && url.Scheme is "ws" or "wss")
            {
                leader = new ServerEndpoint(url.Host, url.Port, url);
            }
        }
        else if (ServerEndpoint.TryParse(redirect.Endpoint, out var parsed, out var problem))
        {
            leader = parsed;
        }
        else
        {
            LogBadRedirect(_logger, connection.Endpoint, redirect.Endpoint, problem);
        }

        Reroute(connection, leader, redirect.Topic, redirect.LeaderNode);
    }

    /// <summary>A NoLeader Error from <paramref name="connection"/> (on its read loop).</summary>
    private void OnNoLeader(ClientConnection connection, ulong? requestId)
    {
        var topic = requestId is { } id ? _requests.NotCarriedOut(id) : null;
        Reroute(connection, null, topic, null);
    }

    /// <summary>
    /// Leaves <paramref name="connection"/> because a node did not carry out a request: it takes no more requests (new
    /// ones wait for the next connection), Close goes out after what was sent, and once the node has answered the rest and
    /// closed (or after <see cref="ZaichikClientOptions.CloseTimeout"/>) the connection ends and the client reconnects to
    /// <paramref name="leader"/>, or the next endpoint when null. Only the first reroute of a connection counts.
    /// </summary>
    private void Reroute(ClientConnection connection, ServerEndpoint? leader, string? topic, string? leaderNode)
    {
        ZaichikConnectionException reason;
        TimeSpan delay;
        lock (_admission)
        {
            if (!ReferenceEquals(connection, _current) || connection.Rerouted is not null || _closed is not null || _closing)
            {
                return;
            }

            // A series also ends after a spell longer than any reconnect between two reroutes of one series can take, so
            // that a client that only consumes (its restores are not requests of the application) follows the next
            // change of leader at once too.
            var now = Environment.TickCount64;
            var spell = (Options.Reconnect.MaxDelay * 2) + Options.ConnectTimeout + Options.CloseTimeout;
            if (now - _lastRerouteMs > spell.TotalMilliseconds)
            {
                Volatile.Write(ref _rerouteStreak, 0);
            }

            _lastRerouteMs = now;
            var streak = Interlocked.Increment(ref _rerouteStreak);
            var about = topic is null ? string.Empty : $" for '{topic}'";
            if (leader is { } target)
            {
                _leader = target;
                delay = streak == 1 ? TimeSpan.Zero : Options.Reconnect.RerouteDelayBefore(streak - 1, Random.Shared);
                reason = new ZaichikConnectionException(
                    $"Zaichik at {connection.Endpoint} redirected a request{about} to the leader, node '{leaderNode}' at {target}");
            }
            else
            {
                // No leader known (or none usable): the next endpoint, after the backoff.
                _leader = null;
                _nextEndpoint = (_nextEndpoint + 1) % _endpoints.Length;
                delay = Options.Reconnect.RerouteDelayBefore(streak, Random.Shared);
                reason = new ZaichikConnectionException(leaderNode is null
                    ? $"Zaichik at {connection.Endpoint} knows no leader{about} now"
                    : $"Zaichik at {connection.Endpoint} redirected a request{about} to node '{leaderNode}' without a usable endpoint");
            }

            _rerouteDelay = delay;
            connection.Rerouted = reason;
            if (ReferenceEquals(_connection, connection))
            {
                _connection = null;
                _state = ZaichikConnectionState.Reconnecting;
                if (_gate.Task.IsCompleted)
                {
                    _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
            }

            try
            {
                // Under the lock, so no request frame follows it: requests are written under this lock too.
                connection.Sender.Write(default(CloseFrame));
            }
            catch (ZaichikConnectionException)
            {
                // Ending anyway; its end is reported as usual.
            }
        }

        var endpoint = leader?.ToString();
        LogRerouted(_logger, connection.Endpoint, topic ?? "(unknown)", leaderNode ?? "(none)", endpoint ?? "(next server)", delay.TotalMilliseconds);
        ZaichikTelemetry.Redirected(leader is not null);
        try
        {
            Redirected?.Invoke(this, new ZaichikRedirect(connection.Endpoint, topic, leaderNode, endpoint, delay));
        }
        catch (Exception)
        {
            // A handler's failure must not take down the read loop.
        }

        _ = EndReroutedAsync(connection, reason);
    }

    /// <summary>Waits for the node to answer what it read and close; ends the connection itself after the close timeout.</summary>
    private async Task EndReroutedAsync(ClientConnection connection, ZaichikConnectionException reason)
    {
        try
        {
            await connection.Ended.WaitAsync(Options.CloseTimeout, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            // The node did not close in time, or the client is closing: end it here.
        }

        connection.Terminate(reason);
    }

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Zaichik at {From} did not carry out a request for {Topic}: leader {LeaderNode}, going to {Endpoint} in {DelayMs} ms")]
    private static partial void LogRerouted(ILogger logger, string from, string topic, string leaderNode, string endpoint, double delayMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Zaichik at {From} redirected to '{Endpoint}', which is not usable ({Problem}); trying the next server instead")]
    private static partial void LogBadRedirect(ILogger logger, string from, string endpoint, string problem);
}
