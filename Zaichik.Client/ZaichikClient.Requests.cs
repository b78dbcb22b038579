using Zaichik.Client.Internal;
using Zaichik.Protocol;

namespace Zaichik.Client;

public sealed partial class ZaichikClient
{
    private readonly Lock _admission = new();
    private readonly Queue<QueuedRequest> _queued = new();
    private string? _lastValidTopic;
    private ulong _producerSequence;
    private bool _draining;

    /// <summary>Sends one request and awaits its answer. An Error answer throws <see cref="ZaichikServerException"/>.</summary>
    private async ValueTask<AckFrame> RequestAsync(FrameType type, string topic, object frame, CancellationToken cancellationToken)
    {
        var request = await SendRequestAsync(type, topic, default, frame, cancellationToken).ConfigureAwait(false);
        return await request.AsValueTask().ConfigureAwait(false);
    }

    /// <summary>
    /// Registers the request under a fresh id and sends its frame (<paramref name="publish"/> for a Publish, otherwise
    /// <paramref name="frame"/>), in call order: requests are admitted first come, first served, so publishes issued one
    /// after another reach the server, and are stored, in that order even while the send buffer or the pending slots are
    /// full. When there is room and a slot and nobody queues, as almost always, this completes synchronously and
    /// allocates nothing; otherwise the request joins a queue that one loop drains in order. While the client is
    /// reconnecting the request is registered but waits, unsent, for the next connection.
    /// </summary>
    private ValueTask<PendingRequest> SendRequestAsync(
        FrameType type, string topic, in PublishFrame publish, object? frame, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ThrowIfClosed();
        lock (_admission)
        {
            if (!_draining && (_connection is null || _connection.Sender.HasRoom) && _requests.TryBegin(type, topic, out var request))
            {
                return ValueTask.FromResult(Stage(request, publish, frame, cancellationToken));
            }

            return Queue(type, topic, publish, frame, cancellationToken);
        }
    }

    /// <summary>Joins the admission queue (under <see cref="_admission"/>). A method of its own so that the fast path allocates no closure.</summary>
    private ValueTask<PendingRequest> Queue(FrameType type, string topic, PublishFrame publish, object? frame, CancellationToken cancellationToken)
    {
        var queued = new QueuedRequest(type, topic, publish, frame, cancellationToken);
        _queued.Enqueue(queued);
        if (!_draining)
        {
            _draining = true;
            _ = Task.Run(DrainQueueAsync);
        }

        return new ValueTask<PendingRequest>(queued.Completion.Task);
    }

    /// <summary>
    /// Gives a registered request its frame and sends it when there is a connection (under <see cref="_admission"/>).
    /// A Publish gets its producer sequence here, so the numbers follow the order of the wire.
    /// </summary>
    private PendingRequest Stage(PendingRequest request, in PublishFrame publish, object? frame, CancellationToken cancellationToken)
    {
        if (request.Type == FrameType.Publish)
        {
            request.Publish = publish with { RequestId = request.Id, ProducerSequence = _producerId == 0 ? 0 : ++_producerSequence };
            request.StartedTimestamp = ZaichikTelemetry.PublishStarted();
        }
        else
        {
            request.Frame = frame;
        }

        if (_connection is { } connection)
        {
            try
            {
                WriteRequest(connection.Sender, request);
                request.Sent = true;
            }
            catch (ZaichikConnectionException) when (Options.Reconnect.Enabled && _closed is null && !_closing)
            {
                // The connection ended a moment ago; the request waits for the next one like any made from now on.
            }
            catch
            {
                _requests.Abandon(request);
                throw;
            }
        }

        request.WatchCancellation(cancellationToken);
        return request;
    }

    /// <summary>Encodes a request's frame with its id; throws when the connection's writer is closed.</summary>
    private static void WriteRequest(FrameSender sender, PendingRequest request)
    {
        switch (request.Frame)
        {
            case null:
                sender.Write(request.Publish);
                break;
            case CreateTopicFrame create:
                sender.Write(create with { RequestId = request.Id });
                break;
            case SubscribeRequest subscribe:
                sender.Write(subscribe.Frame with { RequestId = request.Id });
                subscribe.Subscription.MarkSent();
                break;
            case UnsubscribeFrame unsubscribe:
                sender.Write(unsubscribe with { RequestId = request.Id });
                break;
            default:
                throw new InvalidOperationException($"no frame for a {request.Type} request");
        }
    }

    /// <summary>
    /// Admits queued requests one at a time, in the order they queued: waits for a slot and room for the head, sends it,
    /// and moves on. Ends when the queue is empty; new requests then take the fast path again.
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
                var request = await _requests.BeginAsync(next.Type, next.Topic, next.Token).ConfigureAwait(false);
                PendingRequest? staged = null;
                try
                {
                    while (staged is null)
                    {
                        FrameSender sender;
                        lock (_admission)
                        {
                            if (_connection is null || _connection.Sender.HasRoom)
                            {
                                _queued.Dequeue();
                                staged = Stage(request, next.Publish, next.Frame, next.Token);
                                break;
                            }

                            sender = _connection.Sender;
                        }

                        try
                        {
                            await sender.WaitForRoomAsync(next.Token).ConfigureAwait(false);
                        }
                        catch (ZaichikConnectionException) when (_closed is null && !_closing)
                        {
                            // That connection ended; the request waits for the next one.
                        }
                    }
                }
                catch
                {
                    if (staged is null)
                    {
                        _requests.Abandon(request);
                    }

                    throw;
                }

                next.Completion.TrySetResult(staged);
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

    /// <summary>A Subscribe's frame and the subscription it makes, kept with the pending request.</summary>
    private sealed record SubscribeRequest(SubscribeFrame Frame, ZaichikSubscription Subscription);

    /// <summary>A request waiting its turn for a pending slot and room in the send buffer.</summary>
    private sealed class QueuedRequest : IDisposable
    {
        private readonly CancellationTokenRegistration _cancellation;

        public QueuedRequest(FrameType type, string topic, PublishFrame publish, object? frame, CancellationToken token)
        {
            Type = type;
            Topic = topic;
            Publish = publish;
            Frame = frame;
            Token = token;

            // A caller that gives up is answered at once, not when its turn comes; the loop then skips it.
            _cancellation = token.Register(static state => ((QueuedRequest)state!).Completion.TrySetCanceled(((QueuedRequest)state!).Token), this);
        }

        public FrameType Type { get; }

        public string Topic { get; }

        public PublishFrame Publish { get; }

        public object? Frame { get; }

        public CancellationToken Token { get; }

        public TaskCompletionSource<PendingRequest> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Dispose() => _cancellation.Dispose();
    }
}
