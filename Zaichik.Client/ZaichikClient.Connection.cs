using Microsoft.Extensions.Logging;
using Zaichik.Client.Internal;
using Zaichik.Protocol;

namespace Zaichik.Client;

public sealed partial class ZaichikClient
{
    private readonly Random _jitter = new();

    // Guarded by _admission. _current is the connection being used or restored; _connection is the same one once it is
    // open to requests (Connected), null otherwise, so that requests made meanwhile wait for it.
    private ClientConnection? _current;
    private ClientConnection? _connection;
    private volatile ZaichikConnectionState _state = ZaichikConnectionState.Connecting;
    private TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _reconnecting;

    /// <summary>Makes a fresh, restored connection the one requests go to.</summary>
    private void Adopt(ClientConnection connection)
    {
        lock (_admission)
        {
            _current = connection;
            _connection = connection;
            connection.Opened = true;
            _state = ZaichikConnectionState.Connected;
            ServerProtocolVersion = connection.ServerProtocolVersion;
            ServerIdleTimeout = connection.ServerIdleTimeout;
        }

        connection.Start(this);
        OpenGate();
    }

    private void StartConnecting(Exception? firstAttemptFailure) =>
        _reconnecting = Task.Run(() => ReconnectLoopAsync(firstAttemptFailure, initial: firstAttemptFailure is null));

    /// <summary>
    /// Called once per connection when its read loop ends. Requests it carried are made ready for the next connection
    /// (or failed). A connection that was open to requests starts a reconnect loop; one that ended while a reconnect loop
    /// was restoring it leaves the next attempt to that loop, which waits for this to have run.
    /// </summary>
    internal void OnConnectionEnded(ClientConnection connection, Exception? failure)
    {
        bool opened;
        lock (_admission)
        {
            if (!ReferenceEquals(connection, _current))
            {
                return;
            }

            opened = connection.Opened;
            _current = null;
            _connection = null;
            if (_closed is null && !_closing)
            {
                _state = ZaichikConnectionState.Reconnecting;
                if (_gate.Task.IsCompleted)
                {
                    // Callers waiting on a gate still closed keep waiting on it; it opens with the next connection.
                    _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
            }
        }

        if (_closing || _closed is not null)
        {
            return;
        }

        var lost = ConnectionLost(connection, failure);
        var rerouted = connection.Rerouted is not null;
        if (!rerouted)
        {
            // A reroute was logged when the node asked for it.
            LogDisconnected(lost.Message);
        }

        if (!Options.Reconnect.Enabled && !rerouted)
        {
            // The event first: whoever sees a request fail with this reason may look for it.
            RaiseDisconnected(lost);
            Shutdown(() => ConnectionLost(connection, failure), graceful: false);
            return;
        }

        RaiseDisconnected(lost);
        _requests.Disconnected(Options.Idempotence, () => new ZaichikConnectionException(
            $"{lost.Message}; the request was sent, and whether the server handled it is unknown", lost.InnerException));
        FailConfirmations(new ZaichikConnectionException($"{lost.Message}; the Commits could not be confirmed", lost.InnerException));
        if (opened)
        {
            StartConnecting(lost);
        }
    }

    /// <summary>Waits until the client is connected; throws when it closes, the token fires or the request timeout passes.</summary>
    private async ValueTask<ClientConnection> WaitForConnectionAsync(CancellationToken cancellationToken)
    {
        var deadline = Options.RequestTimeout;
        var started = Environment.TickCount64;
        while (true)
        {
            ThrowIfClosed();
            Task gate;
            lock (_admission)
            {
                if (_connection is { } open)
                {
                    return open;
                }

                gate = _gate.Task;
            }

            var left = deadline == Timeout.InfiniteTimeSpan ? Timeout.InfiniteTimeSpan : deadline - TimeSpan.FromMilliseconds(Environment.TickCount64 - started);
            if (left != Timeout.InfiniteTimeSpan && left <= TimeSpan.Zero)
            {
                throw new ZaichikTimeoutException($"not connected to Zaichik at {CurrentEndpoint} within {deadline.TotalSeconds:0.###} s");
            }

            try
            {
                await gate.WaitAsync(left, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw new ZaichikTimeoutException($"not connected to Zaichik at {CurrentEndpoint} within {deadline.TotalSeconds:0.###} s");
            }
        }
    }

    private void OpenGate()
    {
        TaskCompletionSource gate;
        lock (_admission)
        {
            gate = _gate;
        }

        gate.TrySetResult();
    }

    private ZaichikConnectionException ConnectionLost(ClientConnection connection, Exception? failure)
    {
        var endpoint = connection.Endpoint;
        if (connection.Rerouted is { } rerouted)
        {
            return rerouted;
        }

        if (failure is ZaichikConnectionException already)
        {
            return already;
        }

        if (connection.LastServerError is { } serverError)
        {
            return new ZaichikConnectionException($"connection to Zaichik at {endpoint} was closed by the server: {serverError.Message}", serverError);
        }

        return failure is null
            ? new ZaichikConnectionException($"connection to Zaichik at {endpoint} was closed by the server")
            : new ZaichikConnectionException($"connection to Zaichik at {endpoint} was lost: {failure.Message}", failure);
    }

    private void RaiseDisconnected(ZaichikConnectionException lost)
    {
        try
        {
            Disconnected?.Invoke(this, lost);
        }
        catch (Exception)
        {
            // A handler's failure must not stop the reconnect.
        }
    }

    /// <summary>
    /// Opens connections until one is restored: waits the backoff, connects, restores the subscriptions, sends again
    /// what is pending, in the order it was made, and only then lets new requests through. The only loop running: a
    /// connection that ends while it restores it is left to it, and an attempt a cluster node turned away (a reroute)
    /// starts the count again, with the delay the reroute asked for.
    /// </summary>
    private async Task ReconnectLoopAsync(Exception? lastFailure, bool initial)
    {
        var reconnect = Options.Reconnect;
        var attempt = 0;
        while (!_stopping.IsCancellationRequested)
        {
            var reroute = TakeReroute();
            attempt = reroute is null ? attempt + 1 : 1;
            var maxAttempts = reconnect.Enabled ? reconnect.MaxAttempts : 1;
            if (maxAttempts > 0 && attempt > maxAttempts)
            {
                var failure = lastFailure;
                var message = $"gave up connecting to Zaichik at {DescribeEndpoints()} after {maxAttempts} attempt{(maxAttempts == 1 ? string.Empty : "s")}"
                    + (failure is null ? string.Empty : $": {failure.Message}");
                LogGaveUp(message);
                Shutdown(() => new ZaichikConnectionException(message, failure), graceful: false);
                return;
            }

            var endpoint = TargetEndpoint();
            try
            {
                var delay = reroute ?? (initial && attempt == 1 ? TimeSpan.Zero : reconnect.DelayBefore(attempt, _jitter));
                if (delay > TimeSpan.Zero)
                {
                    await Task.Delay(delay, Options.TimeProvider, _stopping.Token).ConfigureAwait(false);
                }

                var connection = await ClientConnection.OpenAsync(Options, endpoint, _producerId, _stopping.Token).ConfigureAwait(false);
                if (await RestoreAsync(connection).ConfigureAwait(false))
                {
                    LogConnected(connection.Endpoint);
                    if (!initial)
                    {
                        ZaichikTelemetry.Reconnected();
                        try
                        {
                            Reconnected?.Invoke(this, EventArgs.Empty);
                        }
                        catch (Exception)
                        {
                            // A handler's failure must not undo the reconnect.
                        }
                    }

                    return;
                }

                // It ended (or could not be restored) before it opened to requests. Its end must have been handled, the
                // requests it carried made ready again, before the next attempt sends what is pending.
                connection.Terminate(new ZaichikConnectionException($"connection to Zaichik at {connection.Endpoint} could not be restored"));
                await connection.ReadLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                if (connection.Rerouted is null)
                {
                    EndpointFailed(endpoint);
                    lastFailure = new ZaichikConnectionException($"connection to Zaichik at {connection.Endpoint} was lost while it was being restored");
                }
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (ZaichikServerException e) when (e.Code == ErrorCode.UnsupportedVersion)
            {
                LogGaveUp(e.Message);
                Shutdown(() => new ZaichikConnectionException($"could not connect to Zaichik at {endpoint}: {e.Message}", e), graceful: false);
                return;
            }
            catch (Exception e) when (e is ZaichikException)
            {
                EndpointFailed(endpoint);
                lastFailure = e;
                LogAttemptFailed(attempt, Options.WebSocketUrl?.ToString() ?? endpoint.ToString(), e.Message);
            }
        }
    }

    /// <summary>
    /// Brings a new connection to where the last one was. False when it ended meanwhile (the loop tries again). The
    /// connection is registered as current first, so that its end is noticed, but requests reach it only at the end.
    /// </summary>
    private async Task<bool> RestoreAsync(ClientConnection connection)
    {
        lock (_admission)
        {
            if (_closed is not null || _closing)
            {
                connection.Terminate(null);
                return false;
            }

            _current = connection;
            ServerProtocolVersion = connection.ServerProtocolVersion;
            ServerIdleTimeout = connection.ServerIdleTimeout;
        }

        connection.Start(this);
        foreach (var subscription in _subscriptions.Values)
        {
            if (!subscription.IsAcknowledged || subscription.IsReleasing)
            {
                // One still being made is sent again as the pending request it is; one being released is not wanted.
                continue;
            }

            if (!await ResubscribeAsync(connection, subscription).ConfigureAwait(false))
            {
                return false;
            }
        }

        return await SendPendingAndOpenAsync(connection).ConfigureAwait(false);
    }

    /// <summary>Subscribes again on the new connection where the subscription left off. False when the connection ended.</summary>
    private async Task<bool> ResubscribeAsync(ClientConnection connection, ZaichikSubscription subscription)
    {
        var resume = subscription.ResumePoint();
        var from = resume is { } next ? StartPosition.Sequence(next) : subscription.Options.From;
        var started = Environment.TickCount64;
        while (true)
        {
            PendingRequest request;
            try
            {
                request = await _requests.BeginAsync(FrameType.Subscribe, subscription.Topic, _stopping.Token).ConfigureAwait(false);
            }
            catch (Exception) when (_stopping.IsCancellationRequested || _closed is not null)
            {
                return false;
            }

            request.Internal = true;
            request.Sent = true;
            try
            {
                if (connection.Rerouted is not null)
                {
                    // Leaving that node; the next connection restores the subscription.
                    throw new ZaichikConnectionException("connection closing");
                }

                connection.Sender.Write(subscription.Options.ToFrame(request.Id, subscription.Topic, from));
            }
            catch (ZaichikConnectionException)
            {
                _requests.Abandon(request);
                return false;
            }

            try
            {
                var ack = await request.AsValueTask().ConfigureAwait(false);
                var start = ack.Sequence ?? -1;
                if (resume is { } expected && start > expected && (subscription.Options.DurableName is null || subscription.Options.AckPolicy == AckPolicy.None))
                {
                    var gap = new ZaichikSubscriptionGap(subscription.Topic, expected, start - 1);
                    LogGap(gap.Topic, gap.FirstMissed, gap.LastMissed);
                    RaiseGap(gap);
                }

                return true;
            }
            catch (ZaichikServerException e) when (e.Code == ErrorCode.AlreadySubscribed
                && Environment.TickCount64 - started < Math.Min(Options.RequestTimeout.TotalMilliseconds, 60_000))
            {
                // The server has not yet noticed that the old connection is gone and still holds the durable name.
                await Task.Delay(Options.Reconnect.DelayBefore(1, _jitter), Options.TimeProvider, _stopping.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                if (_stopping.IsCancellationRequested || connection.HasEnded)
                {
                    return false;
                }
            }
            catch (ZaichikServerException e)
            {
                // The server no longer allows it (a token changed, the topic is quarantined...): that subscription ends.
                LogRestoreRefused(subscription.Topic, e.Message);
                _subscriptions.TryRemove(new KeyValuePair<string, ZaichikSubscription>(subscription.Topic, subscription));
                subscription.Complete(e);
                return true;
            }
            catch (ZaichikException)
            {
                return false;
            }
        }
    }

    /// <summary>
    /// Sends every request that waits for a connection, oldest first, then opens the connection to new ones. Both happen
    /// under the admission lock, a buffer's worth at a time, so no new request can overtake a waiting one.
    /// </summary>
    private async Task<bool> SendPendingAndOpenAsync(ClientConnection connection)
    {
        ulong lastSent = 0;
        while (true)
        {
            lock (_admission)
            {
                if (connection.HasEnded || connection.Rerouted is not null || _closed is not null)
                {
                    return false;
                }

                var done = true;
                foreach (var request in _requests.Unsent(lastSent))
                {
                    if (!connection.Sender.HasRoom)
                    {
                        done = false;
                        break;
                    }

                    try
                    {
                        WriteRequest(connection.Sender, request);
                    }
                    catch (ZaichikConnectionException)
                    {
                        return false;
                    }

                    request.Sent = true;
                    lastSent = request.Id;
                }

                if (done)
                {
                    _connection = connection;
                    connection.Opened = true;
                    _state = ZaichikConnectionState.Connected;
                    break;
                }
            }

            try
            {
                await connection.Sender.WaitForRoomAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception)
            {
                return false;
            }
        }

        OpenGate();
        return true;
    }

    private void RaiseGap(ZaichikSubscriptionGap gap)
    {
        try
        {
            SubscriptionGap?.Invoke(this, gap);
        }
        catch (Exception)
        {
            // A handler's failure must not stop the restore.
        }
    }

    /// <summary>[Host:Port, ...Servers] for messages (the WebSocket URL with one).</summary>
    private string DescribeEndpoints() =>
        Options.WebSocketUrl?.ToString() ?? (_endpoints.Length == 1 ? _endpoints[0].ToString() : $"any of {string.Join(", ", _endpoints)}");

    private void LogConnected(string endpoint)
    {
        if (_logger.IsEnabled(LogLevel.Information))
        {
            _logger.LogInformation("Connected to Zaichik at {Endpoint}", endpoint);
        }
    }

    private void LogDisconnected(string reason) => _logger.LogWarning("Disconnected: {Reason}", reason);

    private void LogAttemptFailed(int attempt, string endpoint, string reason) =>
        _logger.LogInformation("Connection attempt {Attempt} to Zaichik at {Endpoint} failed: {Reason}", attempt, endpoint, reason);

    private void LogGaveUp(string reason) => _logger.LogError("Closing the client: {Reason}", reason);

    private void LogGap(string topic, long first, long last) =>
        _logger.LogWarning("Subscription to {Topic} missed sequences {First}..{Last} while disconnected: the topic no longer holds them", topic, first, last);

    private void LogRestoreRefused(string topic, string reason) =>
        _logger.LogError("Subscription to {Topic} could not be restored and has ended: {Reason}", topic, reason);
}
