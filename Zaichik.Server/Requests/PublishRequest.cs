using Zaichik.Protocol;
using Zaichik.Server.Storage;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Requests;

/// <summary>Publish: limits, rights, the idempotent producer stamp, then the topic decides; Always Acks wait for the flush.</summary>
internal sealed partial class ConnectionRequests
{
    public async ValueTask PublishAsync(PublishFrame publish, CancellationToken cancellationToken)
    {
        Volatile.Write(ref _publishes, _publishes + 1);
        using var activity = Diagnostics.ServerActivities.StartPublish(publish.Topic, publish.Headers);
        try
        {
            if (publish.Key is { Length: var keyLength } && keyLength > _options.MaxKeySize)
            {
                throw new TopicException(ErrorCode.KeyTooLarge, $"key of {keyLength} bytes exceeds the limit of {_options.MaxKeySize}");
            }

            if (publish.Payload.Length > _options.MaxPayloadSize)
            {
                throw new TopicException(ErrorCode.PayloadTooLarge, $"payload of {publish.Payload.Length} bytes exceeds the limit of {_options.MaxPayloadSize}");
            }

            if (publish.Headers.Length > _options.MaxHeadersSize)
            {
                throw new TopicException(ErrorCode.HeadersTooLarge, $"headers of {publish.Headers.Length} bytes exceed the limit of {_options.MaxHeadersSize}");
            }

            var producer = ProducerStamp.None;
            if (publish.ProducerSequence != 0)
            {
                if (_producerId == 0)
                {
                    throw new TopicException(ErrorCode.InvalidArgument,
                        $"producer sequence {publish.ProducerSequence} needs a producer id, and this connection's Hello carried none; send 0 for an ordinary publish");
                }

                producer = new ProducerStamp(_producerId, publish.ProducerSequence);
            }

            if (Volatile.Read(ref _publishesAwaitingCommit) + _awaitingCommit.Count + _awaitingReplication.Count + _batchIds.Count >= _options.MaxPublishesInFlight)
            {
                throw new TopicException(ErrorCode.TooManyPublishesInFlight,
                    $"this connection has {_options.MaxPublishesInFlight} publishes waiting for their commit; wait for their Acks before sending more");
            }

            // The frame reader hands out one string instance per repeated topic name, so this skips the pattern match.
            if (!ReferenceEquals(publish.Topic, _lastPublishAllowed))
            {
                if (!_grant.MayPublish(publish.Topic))
                {
                    throw new TopicException(ErrorCode.NotAuthorized, $"token '{_grant.Name}' may not publish to '{publish.Topic}'");
                }

                _lastPublishAllowed = publish.Topic;
            }

            if (Cluster is { } cluster)
            {
                if (!cluster.IsLeader)
                {
                    RedirectToLeader(cluster, publish.RequestId, publish.Topic);
                    return;
                }

                // The leader stamps the time: every node judges the key window and retention by the same clock. The
                // publishes of one read go into one log entry, replicated once the read is handled (AfterRead).
                _batch ??= new System.Buffers.ArrayBufferWriter<byte>();
                if (_batchIds.Count == 0)
                {
                    global::Zaichik.Server.Cluster.ClusterCommand.BeginBatch(_batch);
                }

                global::Zaichik.Server.Cluster.ClusterCommand.AddToBatch(
                    _batch, publish.Topic, _registry.Context.Time.GetUtcNow().ToUnixTimeMilliseconds(), publish.Key, publish.Payload.Span, publish.Headers.Span, producer);
                _batchIds.Add(publish.RequestId);
                if (_batch.WrittenCount >= _options.Cluster.MaxEntryBytes)
                {
                    ReplicateBatch(cluster, cancellationToken);
                }

                return;
            }

            var topic = await ResolveTopicAsync(publish.Topic, cancellationToken).ConfigureAwait(false);
            var outcome = await topic.PublishAsync(publish.Key, publish.Payload, publish.Headers, producer, cancellationToken).ConfigureAwait(false);
            activity?.SetTag("messaging.message.id", outcome.Sequence);
            activity?.SetTag("zaichik.duplicate", outcome.Duplicate);
            var durable = Topic.IsDurable(outcome);
            if (!durable && topic.Settings.Durability == Durability.Always)
            {
                _awaitingCommit.Add(new DurableAck(outcome, new AckFrame(publish.RequestId, outcome.Sequence, outcome.Duplicate, Durable: true)));
            }
            else
            {
                Reply(new AckFrame(publish.RequestId, outcome.Sequence, outcome.Duplicate, durable));
            }
        }
        catch (TopicException failure)
        {
            _counters.PublishRefused(failure.Code);
            activity?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, failure.Code.ToString());
            Reply(new ErrorFrame(publish.RequestId, failure.Code, failure.Message));
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            _counters.PublishRefused(ErrorCode.StorageFailure);
            LogStorageFailure(exception, publish.Topic);
            Reply(new ErrorFrame(publish.RequestId, ErrorCode.StorageFailure, $"the message was not stored: {exception.Message}"));
        }
    }
}
