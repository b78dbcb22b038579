using Zaichik.Client.Internal;
using Zaichik.Protocol;

namespace Zaichik.Client;

public sealed partial class ZaichikClient
{
    /// <summary>
    /// Subscribes this connection to a topic and completes when the server has acknowledged it, so a message
    /// published afterwards is delivered to it. Enumerate the returned subscription to read messages; dispose it
    /// to unsubscribe. One subscription per topic per connection.
    /// </summary>
    /// <param name="topic">The topic to subscribe to.</param>
    /// <param name="options">Start position, prefetch and auto-commit; <see cref="SubscribeOptions.Default"/> when null.</param>
    /// <param name="cancellationToken">Stops waiting; the client then asks the server to unsubscribe.</param>
    /// <exception cref="ArgumentException">The topic name or an option is invalid.</exception>
    /// <exception cref="ZaichikServerException">
    /// The server refused, for example <see cref="ErrorCode.TopicNotFound"/>, or
    /// <see cref="ErrorCode.AlreadySubscribed"/> when this connection already subscribes to the topic, or
    /// <see cref="ErrorCode.ConsumerPositionLost"/> when the server cannot read a durable consumer's stored position and
    /// <see cref="SubscribeOptions.From"/> is neither a sequence nor a time.
    /// </exception>
    public async ValueTask<ZaichikSubscription> SubscribeAsync(string topic, SubscribeOptions? options = null, CancellationToken cancellationToken = default)
    {
        ValidateTopic(topic);
        options ??= SubscribeOptions.Default;
        options.Validate();
        ThrowIfClosed();

        // Registered before the Subscribe goes out, so no message that follows the Ack finds it missing.
        var subscription = new ZaichikSubscription(this, topic, options);
        if (!_subscriptions.TryAdd(topic, subscription))
        {
            throw new ZaichikServerException(ErrorCode.AlreadySubscribed, $"this connection already subscribes to '{topic}'");
        }

        try
        {
            var frame = options.ToFrame(0, topic, options.From);
            var ack = await RequestAsync(FrameType.Subscribe, topic, new SubscribeRequest(frame, subscription), cancellationToken).ConfigureAwait(false);
            subscription.Acknowledged(ack);
            return subscription;
        }
        catch (Exception e)
        {
            Forget(subscription);
            if (subscription.WasSent && e is OperationCanceledException or ZaichikTimeoutException)
            {
                // The server may subscribe after all; tell it not to, so it delivers nothing nobody reads.
                // Its answer matches no pending request and is ignored.
                TrySend(new UnsubscribeFrame(0, topic));
            }

            throw;
        }
    }

    /// <summary>
    /// Subscribes like <see cref="SubscribeAsync(string, SubscribeOptions?, CancellationToken)"/> and reads each payload as a
    /// <typeparamref name="T"/> through <paramref name="serializer"/> (default <see cref="ZaichikJsonSerializer{T}.Default"/>).
    /// </summary>
    public async ValueTask<ZaichikSubscription<T>> SubscribeAsync<T>(
        string topic, SubscribeOptions? options = null, IZaichikSerializer<T>? serializer = null, CancellationToken cancellationToken = default)
    {
        var subscription = await SubscribeAsync(topic, options, cancellationToken).ConfigureAwait(false);
        return new ZaichikSubscription<T>(subscription, serializer ?? ZaichikJsonSerializer<T>.Default);
    }

    /// <summary>
    /// Unsubscribes this connection from a topic and completes when the server has acknowledged it. The
    /// subscription's enumeration then ends after the messages already received.
    /// </summary>
    /// <exception cref="ZaichikServerException">The server refused, for example <see cref="ErrorCode.NotSubscribed"/>.</exception>
    public async ValueTask UnsubscribeAsync(string topic, CancellationToken cancellationToken = default)
    {
        ValidateTopic(topic);
        try
        {
            await RequestAsync(FrameType.Unsubscribe, topic, new UnsubscribeFrame(0, topic), cancellationToken).ConfigureAwait(false);
        }
        catch (ZaichikServerException e) when (e.Code == ErrorCode.NotSubscribed)
        {
            ForgetTopic(topic);
            throw;
        }

        ForgetTopic(topic);
    }

    /// <summary>Unsubscribes on behalf of <see cref="ZaichikSubscription.DisposeAsync"/>; never throws.</summary>
    internal async ValueTask ReleaseAsync(ZaichikSubscription subscription)
    {
        if (_subscriptions.TryGetValue(subscription.Topic, out var current) && ReferenceEquals(current, subscription) && _closed is null && !_closing)
        {
            // Not restored if the connection is lost meanwhile: the next connection starts without it.
            subscription.MarkReleasing();
            try
            {
                await UnsubscribeAsync(subscription.Topic).ConfigureAwait(false);
            }
            catch (ZaichikException)
            {
                // Lost connection, timeout or NotSubscribed: either way this subscription is over.
            }
        }

        Forget(subscription);
    }

    private void ForgetTopic(string topic)
    {
        if (_subscriptions.TryRemove(topic, out var subscription))
        {
            subscription.Complete(null);
        }
    }

    private void Forget(ZaichikSubscription subscription)
    {
        _subscriptions.TryRemove(new KeyValuePair<string, ZaichikSubscription>(subscription.Topic, subscription));
        subscription.Complete(null);
    }

    private void TrySend(in UnsubscribeFrame frame)
    {
        ClientConnection? connection;
        lock (_admission)
        {
            connection = _connection;
        }

        try
        {
            connection?.Sender.Write(frame);
        }
        catch (ZaichikConnectionException)
        {
            // Nothing to undo on a connection that is gone.
        }
    }
}
