using Zaichik.Client.Internal;
using Zaichik.Protocol;

namespace Zaichik.Client;

public sealed partial class ZaichikClient
{
    private readonly Lock _admission = new();
    private readonly Queue<QueuedRequest> _queued = new();
    private string? _lastValidTopic;
    private bool _draining;

    /// <summary>Sends one request and awaits its answer. An Error answer throws <see cref="ZaichikServerException"/>.</summary>
    private async ValueTask<AckFrame> RequestAsync<TState>(
        FrameType type, string topic, TState state, Action<FrameSender, ulong, TState> write, CancellationToken cancellationToken)
    {
        var request = await SendRequestAsync(type, topic, state, write, cancellationToken).ConfigureAwait(false);
        return await request.AsValueTask().ConfigureAwait(false);
    }

    /// <summary>
    /// Registers the request under a fresh id and encodes its frame (<paramref name="write"/> builds it from the id and
    /// <paramref name="state"/>), in call order: requests are admitted first come, first served, so publishes issued
    /// one after another reach the server, and are stored, in that order even while the send buffer or the pending
    /// slots are full. When there is room and a slot and nobody queues, as almost always, this completes synchronously
    /// and allocates nothing; otherwise the request joins a queue that one loop drains in order.
    /// </summary>
    private ValueTask<PendingRequest> SendRequestAsync<TState>(
        FrameType type, string topic, TState state, Action<FrameSender, ulong, TState> write, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ThrowIfClosed();
        lock (_admission)
        {
            if (!_draining && _sender.HasRoom && _requests.TryBegin(type, topic, out var request))
            {
                return ValueTask.FromResult(Write(request, state, write, cancellationToken));
            }

            return Queue(type, topic, state, write, cancellationToken);
        }
    }

    /// <summary>Joins the admission queue (under <see cref="_admission"/>). A method of its own so that the fast path allocates no closure.</summary>
    private ValueTask<PendingRequest> Queue<TState>(
        FrameType type, string topic, TState state, Action<FrameSender, ulong, TState> write, CancellationToken cancellationToken)
    {
        var queued = new QueuedRequest(type, topic, (client, begun) => client.Write(begun, state, write, cancellationToken), cancellationToken);
        _queued.Enqueue(queued);
        if (!_draining)
        {
            _draining = true;
            _ = Task.Run(DrainQueueAsync);
        }

        return new ValueTask<PendingRequest>(queued.Completion.Task);
    }

    /// <summary>
    /// Admits queued requests one at a time, in the order they queued: waits for room and a slot for the head, encodes
    /// it, and moves on. Ends when the queue is empty; new requests then take the fast path again.
    /// </summary>
    private async Task DrainQueueAsync()
    {
        while (true)
        {
            QueuedRequest next;
            lock (_admission)
            {
                if (!_queued.TryPeek(out next!))
                {
                    _draining = false;
                    return;
                }
            }

            if (next.Completion.Task.IsCompleted)
            {
                // Cancelled while it waited in the queue.
                lock (_admission)
                {
                    _queued.Dequeue();
                }

                next.Dispose();
                continue;
            }

            try
            {
                next.Token.ThrowIfCancellationRequested();
                await _sender.WaitForRoomAsync(next.Token).ConfigureAwait(false);
                var request = await _requests.BeginAsync(next.Type, next.Topic, next.Token).ConfigureAwait(false);
                PendingRequest written;
                lock (_admission)
                {
                    _queued.Dequeue();
                    written = next.Write(this, request);
                }

                next.Completion.TrySetResult(written);
                next.Dispose();
            }
            catch (Exception failure)
            {
                lock (_admission)
                {
                    if (_queued.TryPeek(out var head) && ReferenceEquals(head, next))
                    {
                        _queued.Dequeue();
                    }
                }

                if (failure is OperationCanceledException && next.Token.IsCancellationRequested)
                {
                    next.Completion.TrySetCanceled(next.Token);
                }
                else
                {
                    next.Completion.TrySetException(failure);
                }

                next.Dispose();
            }
        }
    }

    /// <summary>A request waiting its turn for room in the send buffer and a pending slot.</summary>
    private sealed class QueuedRequest : IDisposable
    {
        private readonly CancellationTokenRegistration _cancellation;

        public QueuedRequest(FrameType type, string topic, Func<ZaichikClient, PendingRequest, PendingRequest> write, CancellationToken token)
        {
            Type = type;
            Topic = topic;
            Write = write;
            Token = token;

            // A caller that gives up is answered at once, not when its turn comes; the loop then skips it.
            _cancellation = token.Register(static state => ((QueuedRequest)state!).Completion.TrySetCanceled(((QueuedRequest)state!).Token), this);
        }

        public FrameType Type { get; }

        public string Topic { get; }

        public Func<ZaichikClient, PendingRequest, PendingRequest> Write { get; }

        public CancellationToken Token { get; }

        public TaskCompletionSource<PendingRequest> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Dispose() => _cancellation.Dispose();
    }

    private PendingRequest Write<TState>(PendingRequest request, TState state, Action<FrameSender, ulong, TState> write, CancellationToken cancellationToken)
    {
        try
        {
            write(_sender, request.Id, state);
        }
        catch
        {
            _requests.Abandon(request);
            throw;
        }

        request.WatchCancellation(cancellationToken);
        return request;
    }

    private void ValidateTopic(string topic, string parameterName = "topic")
    {
        // Publishers repeat one topic string; checking it once saves a scan of every character per publish.
        if (ReferenceEquals(topic, Volatile.Read(ref _lastValidTopic)))
        {
            return;
        }

        if (TopicName.Validate(topic) is { } problem)
        {
            throw new ArgumentException(problem, parameterName);
        }

        Volatile.Write(ref _lastValidTopic, topic);
    }
}
