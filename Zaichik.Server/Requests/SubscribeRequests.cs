using Zaichik.Protocol;
using Zaichik.Server.Subscriptions;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Requests;

/// <summary>Subscribe and Unsubscribe: a subscription delivers into the connection's writer within its prefetch window.</summary>
internal sealed partial class ConnectionRequests
{
    public async ValueTask SubscribeAsync(SubscribeFrame subscribe, CancellationToken cancellationToken)
    {
        try
        {
            if (subscribe.Prefetch < 1 || subscribe.Prefetch > _options.MaxPrefetch)
            {
                throw new TopicException(ErrorCode.InvalidArgument, $"prefetch {subscribe.Prefetch} is outside 1..{_options.MaxPrefetch}");
            }

            if (_subscriptions.ContainsKey(subscribe.Topic))
            {
                throw new TopicException(ErrorCode.AlreadySubscribed, $"this connection already subscribes to '{subscribe.Topic}'");
            }

            if (_subscriptions.Count >= _options.MaxSubscriptionsPerConnection)
            {
                throw new TopicException(ErrorCode.TooManySubscriptions, $"a connection may hold at most {_options.MaxSubscriptionsPerConnection} subscriptions");
            }

            if (subscribe.DurableName is { } name && ConsumerName.Validate(name) is { } problem)
            {
                throw new TopicException(ErrorCode.InvalidArgument, problem);
            }

            if (!_grant.MaySubscribe(subscribe.Topic))
            {
                throw new TopicException(ErrorCode.NotAuthorized, $"token '{_grant.Name}' may not subscribe to '{subscribe.Topic}'");
            }

            var topic = await ResolveTopicAsync(subscribe.Topic, cancellationToken).ConfigureAwait(false);
            var start = await topic.SubscribeAsync(subscribe.From, subscribe.DurableName, cancellationToken).ConfigureAwait(false);
            var subscription = new Subscription(topic, start, (int)subscribe.Prefetch, _window, _writer, _logger, subscribe.DurableName, subscribe.AckPolicy);
            var topicName = topic.Name;
            subscription.WhenTopicRetired(() => _onTopicRetired(topicName));
            lock (_subscriptions)
            {
                _subscriptions.Add(subscribe.Topic, subscription);
            }

            _subscriptionsToStart.Add(subscription);
            Reply(new AckFrame(subscribe.RequestId, subscription.StartSequence, false));
        }
        catch (TopicException failure)
        {
            Reply(new ErrorFrame(subscribe.RequestId, failure.Code, failure.Message));
        }
    }

    public async ValueTask UnsubscribeAsync(UnsubscribeFrame unsubscribe)
    {
        bool removed;
        Subscription? subscription;
        lock (_subscriptions)
        {
            removed = _subscriptions.Remove(unsubscribe.Topic, out subscription);
        }

        if (!removed || subscription is null)
        {
            Reply(new ErrorFrame(unsubscribe.RequestId, ErrorCode.NotSubscribed, $"this connection does not subscribe to '{unsubscribe.Topic}'"));
            return;
        }

        _subscriptionsToStart.Remove(subscription);
        Interlocked.Add(ref _endedMessagesOut, subscription.MessagesOut);
        await subscription.DisposeAsync().ConfigureAwait(false);
        Reply(new AckFrame(unsubscribe.RequestId, null, false));
    }
}
