using Zaichik.Protocol;

namespace Zaichik.Client.Internal;

/// <summary>
/// The requests of one connection that await an answer, keyed by request id. Bounds how many may be
/// outstanding, expires those past their deadline, and fails them all when the connection ends.
/// Its lock guards only the table and the pool; nothing is awaited or completed under it. The semaphore and
/// token source are never disposed: callers racing the close may still touch them, and neither holds a handle.
/// </summary>
internal sealed class PendingRequests
{
    private readonly Lock _lock = new();
    private readonly Dictionary<ulong, PendingRequest> _byId = [];
    private readonly Stack<PendingRequest> _pool = new();
    private readonly SemaphoreSlim _slots;
    private readonly CancellationTokenSource _closing = new();
    private readonly int _maxPending;
    private readonly long _timeoutMs;
    private ulong _lastId;
    private Func<Exception>? _closed;

    /// <param name="maxPending">How many requests may await an answer at once.</param>
    /// <param name="timeout">How long each may wait, or <see cref="Timeout.InfiniteTimeSpan"/>.</param>
    public PendingRequests(int maxPending, TimeSpan timeout)
    {
        _maxPending = maxPending;
        _slots = new SemaphoreSlim(maxPending, maxPending);
        _timeoutMs = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue / 2 : (long)timeout.TotalMilliseconds;
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _byId.Count;
            }
        }
    }

    /// <summary>Waits for a free slot, then registers a request under a fresh id.</summary>
    /// <summary>Registers a request at once when a slot is free; false when the caller must wait with <see cref="BeginAsync"/>.</summary>
    public bool TryBegin(FrameType type, string? topic, out PendingRequest request)
    {
        if (_slots.Wait(0))
        {
            request = Register(type, topic);
            return true;
        }

        request = null!;
        return false;
    }

    public ValueTask<PendingRequest> BeginAsync(FrameType type, string? topic, CancellationToken cancellationToken) =>
        _slots.Wait(0) ? new ValueTask<PendingRequest>(Register(type, topic)) : BeginSlowAsync(type, topic, cancellationToken);

    /// <summary>Completes the request an Ack answers; false when none waits for it (expired or cancelled).</summary>
    public bool TryComplete(in AckFrame ack) => TryComplete(ack, out _);

    /// <summary>Completes the request an Ack answers and says whether the client made it itself; false when none waits for it.</summary>
    public bool TryComplete(in AckFrame ack, out bool isInternal)
    {
        if (!TryRemove(ack.RequestId, out var request))
        {
            isInternal = false;
            return false;
        }

        isInternal = request.Internal;
        request.SetResult(ack);
        return true;
    }

    /// <summary>
    /// Notes that the server did not carry out request <paramref name="requestId"/> (it redirected it, or knew no
    /// leader): it stays pending, and <see cref="Disconnected"/> makes it unsent, to go out again on the next connection,
    /// whatever its type. The client's own requests are not sent again; they fail with their connection as always.
    /// Returns the request's topic, or null when no request with that id waits.
    /// </summary>
    public string? NotCarriedOut(ulong requestId)
    {
        lock (_lock)
        {
            if (!_byId.TryGetValue(requestId, out var request))
            {
                return null;
            }

            if (!request.Internal)
            {
                request.NotCarriedOut = true;
            }

            return request.Topic;
        }
    }

    public bool TryFail(ulong requestId, Exception error)
    {
        if (!TryRemove(requestId, out var request))
        {
            return false;
        }

        request.SetException(error);
        return true;
    }

    /// <summary>Takes back a request whose frame could not be written; it was never handed out.</summary>
    public void Abandon(PendingRequest request)
    {
        if (TryRemove(request.Id, out _))
        {
            request.Reset();
            Return(request);
        }
    }

    /// <summary>Fails every request whose deadline has passed.</summary>
    public void ExpireOverdue(long nowMs, TimeSpan timeout)
    {
        List<PendingRequest>? overdue = null;
        lock (_lock)
        {
            foreach (var request in _byId.Values)
            {
                if (request.DeadlineMs <= nowMs)
                {
                    (overdue ??= []).Add(request);
                }
            }

            if (overdue is null)
            {
                return;
            }

            foreach (var request in overdue)
            {
                _byId.Remove(request.Id);
            }
        }

        foreach (var request in overdue)
        {
            _slots.Release();
            var about = request.Topic is null ? string.Empty : $" for '{request.Topic}'";
            request.SetException(new ZaichikTimeoutException(
                $"{request.Type} request {request.Id}{about} got no answer within {timeout.TotalSeconds:0.###} s"));
        }
    }

    /// <summary>
    /// The connection that carried the sent requests ended and another will follow. Requests that can be sent again
    /// safely (idempotent publishes, CreateTopic, a Subscribe not yet answered, and any request the server said it did
    /// not carry out) become unsent and wait for it; an Unsubscribe is done (the next connection starts without the
    /// subscription); the rest fail with <paramref name="lost"/>: a publish without idempotence (it may or may not have
    /// been stored) and the client's own requests.
    /// </summary>
    public void Disconnected(bool idempotentPublishes, Func<Exception> lost)
    {
        var failed = new List<PendingRequest>();
        var done = new List<PendingRequest>();
        lock (_lock)
        {
            foreach (var request in _byId.Values)
            {
                if (!request.Sent)
                {
                    continue;
                }

                if (request.Internal || (request.Type == FrameType.Publish && !idempotentPublishes && !request.NotCarriedOut))
                {
                    failed.Add(request);
                }
                else if (request.Type == FrameType.Unsubscribe)
                {
                    done.Add(request);
                }
                else
                {
                    request.Sent = false;
                    request.NotCarriedOut = false;
                }
            }

            foreach (var request in failed.Concat(done))
            {
                _byId.Remove(request.Id);
            }
        }

        foreach (var request in failed)
        {
            _slots.Release();
            request.SetException(lost());
        }

        foreach (var request in done)
        {
            _slots.Release();
            request.SetResult(new AckFrame(request.Id, null, false));
        }
    }

    /// <summary>The requests not yet sent with an id above <paramref name="afterId"/>, in id order (the order they were made).</summary>
    public List<PendingRequest> Unsent(ulong afterId)
    {
        var unsent = new List<PendingRequest>();
        lock (_lock)
        {
            foreach (var request in _byId.Values)
            {
                if (!request.Sent && request.Id > afterId)
                {
                    unsent.Add(request);
                }
            }
        }

        unsent.Sort(static (a, b) => a.Id.CompareTo(b.Id));
        return unsent;
    }

    /// <summary>Fails every pending request and refuses new ones; each failure gets a fresh exception from <paramref name="closed"/>.</summary>
    public void FailAll(Func<Exception> closed)
    {
        List<PendingRequest> failed;
        lock (_lock)
        {
            if (_closed is not null)
            {
                return;
            }

            _closed = closed;
            failed = [.. _byId.Values];
            _byId.Clear();
        }

        _closing.Cancel();
        var error = closed();
        foreach (var request in failed)
        {
            request.SetException(error);
        }
    }

    public void Return(PendingRequest request)
    {
        lock (_lock)
        {
            if (_pool.Count < _maxPending)
            {
                _pool.Push(request);
            }
        }
    }

    private async ValueTask<PendingRequest> BeginSlowAsync(FrameType type, string? topic, CancellationToken cancellationToken)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closing.Token);
        try
        {
            await _slots.WaitAsync(either.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && _closed is { } closed)
        {
            throw closed();
        }

        return Register(type, topic);
    }

    private PendingRequest Register(FrameType type, string? topic)
    {
        PendingRequest request;
        lock (_lock)
        {
            if (_closed is { } closed)
            {
                _slots.Release();
                throw closed();
            }

            request = _pool.Count > 0 ? _pool.Pop() : new PendingRequest(this);
            var deadline = Environment.TickCount64 + _timeoutMs;
            request.Start(++_lastId, type, topic, deadline);
            _byId.Add(request.Id, request);
        }

        return request;
    }

    private bool TryRemove(ulong requestId, out PendingRequest request)
    {
        lock (_lock)
        {
            if (!_byId.Remove(requestId, out request!))
            {
                return false;
            }
        }

        _slots.Release();
        return true;
    }
}
