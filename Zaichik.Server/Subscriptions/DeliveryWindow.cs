namespace Zaichik.Server.Subscriptions;

/// <summary>
/// A connection's count of delivered, uncommitted messages, shared by all its subscriptions. A subscription
/// with prefetch <c>p</c> may deliver only while fewer than <c>p</c> are in flight, so with the default
/// prefetch of 1 exactly one message is outstanding across the whole connection until it is committed.
/// </summary>
internal sealed class DeliveryWindow
{
    private readonly Lock _lock = new();
    private int _inFlight;
    private TaskCompletionSource? _released;

    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Reserves up to <paramref name="wanted"/> deliveries under <paramref name="limit"/>; returns how many were granted.</summary>
    public int TryReserve(int limit, int wanted)
    {
        while (true)
        {
            var current = Volatile.Read(ref _inFlight);
            var available = limit - current;
            if (available <= 0)
            {
                return 0;
            }

            var granted = Math.Min(available, wanted);
            if (Interlocked.CompareExchange(ref _inFlight, current + granted, current) == current)
            {
                return granted;
            }
        }
    }

    /// <summary>Returns reserved-but-unused or committed deliveries and wakes subscriptions waiting for room.</summary>
    public void Release(int count)
    {
        if (count <= 0)
        {
            return;
        }

        Interlocked.Add(ref _inFlight, -count);
        TaskCompletionSource? waiters;
        lock (_lock)
        {
            waiters = _released;
            _released = null;
        }

        waiters?.TrySetResult();
    }

    /// <summary>Completes when fewer than <paramref name="limit"/> deliveries are in flight.</summary>
    public Task WaitForRoomAsync(int limit, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (Volatile.Read(ref _inFlight) < limit)
            {
                return Task.CompletedTask;
            }

            _released ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _released.Task.WaitAsync(cancellationToken);
        }
    }
}
