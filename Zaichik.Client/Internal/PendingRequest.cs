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

    /// <summary>
    /// The frame of a Publish, kept until its answer so that it can be sent again on the next connection (its payload is
    /// the caller's memory, which must not change until then).
    /// </summary>
    public PublishFrame Publish { get; set; }

    /// <summary>The frame of any other request (boxed; they are rare), kept for the same reason.</summary>
    public object? Frame { get; set; }

    /// <summary>True once the frame was handed to a connection's writer; false while it waits for a connection.</summary>
    public bool Sent { get; set; }

    /// <summary>A request the client makes itself (restoring a subscription): never sent again, failed when its connection ends.</summary>
    public bool Internal { get; set; }

    /// <summary>
    /// The server answered that it did not carry the request out (a cluster node's Redirect, or NoLeader): it is sent
    /// again on the next connection whatever its type, since it cannot have taken effect. Cleared when it is.
    /// </summary>
    public bool NotCarriedOut { get; set; }

    /// <summary>When the request began, for the publish duration histogram (0 when nobody measures it).</summary>
    public long StartedTimestamp { get; set; }

    public void Start(ulong id, FrameType type, string? topic, long deadlineMs)
    {
        Id = id;
        Type = type;
        Topic = topic;
        DeadlineMs = deadlineMs;
        Sent = false;
        Internal = false;
        NotCarriedOut = false;
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
        Publish = default;
        Frame = null;
        StartedTimestamp = 0;
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
        var started = StartedTimestamp;
        var topic = Topic;
        var ack = GetResult(token);
        ZaichikTelemetry.Published(topic, started);
        return new PublishResult(ack.Sequence ?? -1, ack.Duplicate, ack.Durable);
    }

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
