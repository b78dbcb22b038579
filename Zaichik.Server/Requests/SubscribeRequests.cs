using Zaichik.Protocol;
using Zaichik.Server.Subscriptions;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Requests;

/// <summary>Subscribe and Unsubscribe: a subscription delivers into the connection's writer within its prefetch window.</summary>
internal sealed partial class ConnectionRequests
{
    /// <summary>Numbers the private groups of subscriptions with redelivery settings and no group.</summary>
    private static long s_privateGroups;

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

            ValidateGroup(subscribe);
            if (!_grant.MaySubscribe(subscribe.Topic))
            {
                throw new TopicException(ErrorCode.NotAuthorized, $"token '{_grant.Name}' may not subscribe to '{subscribe.Topic}'");
            }

            if (subscribe.DeadLetterTopic is { } deadLetters && !_grant.MayPublish(deadLetters))
            {
                throw new TopicException(ErrorCode.NotAuthorized, $"token '{_grant.Name}' may not publish to the dead-letter topic '{deadLetters}'");
            }

            if (Cluster is { } cluster)
            {
                if (!cluster.IsLeader)
                {
                    RedirectToLeader(cluster, subscribe.RequestId, subscribe.Topic);
                    return;
                }
            }

            var topic = await ResolveTopicAsync(subscribe.Topic, cancellationToken).ConfigureAwait(false);
            Subscription subscription;
            if (subscribe.Group is not null || HasRedeliverySettings(subscribe))
            {
                // Without a group, AckWait, MaxDeliver or a dead-letter topic give the subscription a private group of its own.
                var groupName = subscribe.Group ?? ConsumerGroup.PrivatePrefix + Interlocked.Increment(ref s_privateGroups).ToString(System.Globalization.CultureInfo.InvariantCulture);
                var settings = new GroupSettings(
                    subscribe.AckWaitMs == 0 ? (uint)_options.DefaultAckWait.TotalMilliseconds : subscribe.AckWaitMs, subscribe.MaxDeliver, subscribe.DeadLetterTopic);
                var (registry, retention) = (_registry, _options.DeadLetterRetention);
                Func<string, CancellationToken, ValueTask<Topic>> deadLetterTopics = registry.Context.Replication is { } replication
                    ? (name, token) => replication.EnsureDeadLetterTopicAsync(name, retention, token) // created through the log, on every node
                    : (name, token) => registry.GetForDeadLettersAsync(name, retention, token);
                if (subscribe.DeadLetterTopic is { } deadLetterTopic)
                {
                    // Refused now, not at the first dead letter, when it cannot exist.
                    await deadLetterTopics(deadLetterTopic, cancellationToken).ConfigureAwait(false);
                }

                var (group, member, startSequence, storage) = await topic.JoinGroupAsync(
                    groupName, subscribe.From, settings, (int)subscribe.Prefetch, _window, _writer,
                    deadLetterTopics, _options.MaxOutstandingPerGroup,
                    cancellationToken).ConfigureAwait(false);
                subscription = new Subscription(topic, storage, group, member, startSequence, _window, _writer, _logger);
            }
            else
            {
                var start = await topic.SubscribeAsync(subscribe.From, subscribe.DurableName, cancellationToken).ConfigureAwait(false);
                subscription = new Subscription(topic, start, (int)subscribe.Prefetch, _window, _writer, _logger, subscribe.DurableName, subscribe.AckPolicy);
            }

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

    /// <summary>Group settings need a group; a group needs explicit acks, a valid name and a dead-letter topic other than its own.</summary>
    private void ValidateGroup(in SubscribeFrame subscribe)
    {
        if (subscribe.Group is not { } group)
        {
            if (!HasRedeliverySettings(subscribe))
            {
                return;
            }

            if (subscribe.DurableName is not null)
            {
                throw new TopicException(ErrorCode.InvalidArgument,
                    "a durable consumer with AckWait, MaxDeliver or a dead-letter topic is a consumer group: subscribe with a Group (a group is durable)");
            }
        }
        else
        {
            if (ConsumerName.Validate(group) is { } problem)
            {
                throw new TopicException(ErrorCode.InvalidArgument, problem.Replace("durable consumer name", "consumer group name", StringComparison.Ordinal));
            }

            if (subscribe.DurableName is not null)
            {
                throw new TopicException(ErrorCode.InvalidArgument, "a subscription is either a durable consumer or a member of a group, not both: a group is durable already");
            }
        }

        if (subscribe.AckPolicy != AckPolicy.Explicit)
        {
            throw new TopicException(ErrorCode.InvalidArgument, "redelivery (a consumer group, AckWait, MaxDeliver) needs AckPolicy Explicit: messages are redelivered until committed");
        }

        if (subscribe.DeadLetterTopic is { } deadLetters)
        {
            if (TopicName.Validate(deadLetters, _options.MaxTopicNameLength) is { } invalid)
            {
                throw new TopicException(ErrorCode.InvalidArgument, $"dead-letter topic: {invalid}");
            }

            if (deadLetters == subscribe.Topic)
            {
                throw new TopicException(ErrorCode.InvalidArgument, "a group's dead-letter topic must be another topic than the one it consumes");
            }
        }
    }

    private static bool HasRedeliverySettings(in SubscribeFrame subscribe) =>
        subscribe.AckWaitMs != 0 || subscribe.MaxDeliver != 0 || subscribe.DeadLetterTopic is not null;

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
