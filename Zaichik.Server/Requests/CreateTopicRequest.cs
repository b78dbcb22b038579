using Zaichik.Protocol;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Requests;

/// <summary>CreateTopic: answered once the catalog has the topic on disk; reading goes on meanwhile.</summary>
internal sealed partial class ConnectionRequests
{
    public async ValueTask CreateTopicAsync(CreateTopicFrame create, CancellationToken cancellationToken)
    {
        try
        {
            if (!_grant.MayPublish(create.Topic))
            {
                throw new TopicException(ErrorCode.NotAuthorized, $"token '{_grant.Name}' may not create '{create.Topic}' (creating needs publish permission)");
            }

            var settings = new TopicSettings(
                create.RetentionTtlMs, create.CompactionWindowMs, create.Durability, create.CommitIntervalMs, create.MaxMessages, create.MaxBytes, create.KeepLatestPerKey, create.TombstoneRetentionMs);
            if (Cluster is { } cluster)
            {
                if (!cluster.IsLeader)
                {
                    RedirectToLeader(cluster, create.RequestId, create.Topic);
                    return;
                }

                _pendingCreates.Add(new PendingCreate(cluster.CreateTopicAsync(create.Topic, settings, cancellationToken), create.RequestId));
                return;
            }

            var creating = _registry.CreateAsync(create.Topic, settings, cancellationToken);
            if (!creating.IsCompleted && Volatile.Read(ref _publishesAwaitingCommit) + _pendingCreates.Count < _options.MaxPublishesInFlight)
            {
                // The catalog records creations in groups, one fsync each: reading on lets this connection's next
                // creations join the same group.
                _pendingCreates.Add(new PendingCreate(creating.AsTask(), create.RequestId));
                return;
            }

            await creating.ConfigureAwait(false);
            Reply(new AckFrame(create.RequestId, null, false));
        }
        catch (TopicException failure)
        {
            Reply(new ErrorFrame(create.RequestId, failure.Code, failure.Message));
        }
    }
}
