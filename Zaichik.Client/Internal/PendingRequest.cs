using System.Threading.Tasks.Sources;
using Zaichik.Protocol;

namespace Zaichik.Client.Internal;

/// <summary>
/// One request awaiting its Ack or Error. Pooled by <see cref="PendingRequests"/>: the awaiter's
/// <see cref="GetResult"/> returns it, so a steady stream of publishes allocates no task per request.
/// Whoever removes it from the table completes it, so it completes exactly once.
/// </summary>
internal sealed class PendingRequest : IValueTaskSource<AckFrame>, IValueTaskSource<PublishResult>
{
    private readonly PendingRequests _owner;
    private ManualResetValueTaskSourceCore<AckFrame> _core;
    private CancellationTokenRegistration _cancellation;

    public PendingRequest(PendingRequests owner)
    {
        _owner = owner;
        // Answers are completed on the read loop; a continuation must never run (and block) there.
        _core.RunContinuationsAsynchronously = true;
    }

    public ulong Id { get; private set; }

    public FrameType Type { get; private set; }

    public string? Topic { get; private set; }

    public long DeadlineMs { get; private set; }

    public void Start(ulong id, FrameType type, string? topic, long deadlineMs)
    {
        Id = id;
        Type = type;
        Topic = topic;
        DeadlineMs = deadlineMs;
    }

    public ValueTask<AckFrame> AsValueTask() => new(this, _core.Version);

    /// <summary>The answer as a publish result, without an intermediate task.</summary>
    public ValueTask<PublishResult> AsPublishResult() => new(this, _core.Version);

    /// <summary>Stops waiting (the request itself stays sent) when <paramref name="cancellationToken"/> fires.</summary>
    public void WatchCancellation(CancellationToken cancellationToken)
    {
        if (cancellationToken.CanBeCanceled)
        {
            _cancellation = cancellationToken.UnsafeRegister(
                static (state, token) =>
                {
                    var request = (PendingRequest)state!;
                    request._owner.TryFail(request.Id, new OperationCanceledException(token));
                },
                this);
        }
    }

    public void SetResult(AckFrame ack) => _core.SetResult(ack);

    public void SetException(Exception error) => _core.SetException(error);

    /// <summary>Makes a request that was never handed out reusable.</summary>
    public void Reset()
    {
        Topic = null;
        _core.Reset();
    }

    public AckFrame GetResult(short token)
    {
        if (token != _core.Version)
        {
            throw new InvalidOperationException("a pending Zaichik request was awaited twice");
        }

        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            // Dispose waits for a running cancellation callback, so none can touch this object once it is reused.
            _cancellation.Dispose();
            _cancellation = default;
            Reset();
            _owner.Return(this);
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    PublishResult IValueTaskSource<PublishResult>.GetResult(short token)
    {
        var ack = GetResult(token);
        return new PublishResult(ack.Sequence ?? -1, ack.Duplicate, ack.Durable);
    }

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
