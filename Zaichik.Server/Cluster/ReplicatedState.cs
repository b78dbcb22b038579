using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using Microsoft.Extensions.Logging;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Cluster;

/// <summary>
/// The Raft state machine of a cluster node: applies each committed entry to this node's topics, in log order, one at a
/// time (the write-ahead log never calls it concurrently). An entry's outcome depends only on the entry and the entries
/// before it, so every node computes the same sequences, duplicates and positions. On the node that proposed an entry,
/// its context (a <see cref="BatchOutcome"/> for publishes, an <see cref="AppliedOutcome{T}"/> otherwise) receives the outcome,
/// which becomes the client's Ack or Error.
/// </summary>
/// <remarks>
/// The topics are a view of the Raft log: a node rebuilds them from the log when it starts (<see cref="ClusterNode"/>
/// clears the view first), so an entry is never applied twice to the same files. No snapshot is taken yet.
/// </remarks>
internal sealed partial class ReplicatedState(TopicRegistry registry, ILogger logger) : IStateMachine
{
    private long _lastApplied;

    /// <summary>The index of the last entry applied to the topics.</summary>
    public long LastApplied => Volatile.Read(ref _lastApplied);

    /// <summary>Entries whose outcome was an error on this node (a refused CreateTopic, a storage failure).</summary>
    public long Refused { get; private set; }

    ISnapshot? ISnapshotManager.Snapshot => null;

    ValueTask ISnapshotManager.ReclaimGarbageAsync(long watermark, CancellationToken token) => ValueTask.CompletedTask;

    async ValueTask<long> IStateMachine.ApplyAsync(LogEntry entry, CancellationToken token)
    {
        try
        {
            if (!entry.IsConfiguration && entry.TryGetPayload(out var payload) && !payload.IsEmpty)
            {
                var bytes = payload.ToMemory();
                if (ClusterCommand.KindOf(bytes) == ClusterCommandKind.PublishBatch)
                {
                    await ApplyBatchAsync(ClusterCommand.DecodeBatch(bytes), entry.Context as BatchOutcome, token).ConfigureAwait(false);
                }
                else
                {
                    await ApplyAsync(ClusterCommand.Decode(bytes), entry.Context, token).ConfigureAwait(false);
                }
            }
        }
        catch (Exception failure) when (failure is not OperationCanceledException)
        {
            Refused++;
            LogApplyFailed(failure, entry.Index);
            Fail(entry.Context, failure);
        }

        Volatile.Write(ref _lastApplied, entry.Index);
        return 0;
    }

    /// <summary>Each publish on its own: one refused (an unknown topic, a full disk) does not stop the others.</summary>
    private async ValueTask ApplyBatchAsync(List<ClusterCommand> publishes, BatchOutcome? outcome, CancellationToken token)
    {
        Topic? topic = null;
        for (var i = 0; i < publishes.Count; i++)
        {
            var publish = publishes[i];
            try
            {
                if (topic is null || topic.Name != publish.Topic)
                {
                    topic = await registry.GetForUseAsync(publish.Topic, token).ConfigureAwait(false);
                }

                var stored = await topic.PublishAsync(publish.Key, publish.Payload, publish.Headers, publish.Producer, token, publish.TimestampMs).ConfigureAwait(false);
                if (outcome is not null)
                {
                    outcome.Outcomes[i] = stored;
                }
            }
            catch (Exception failure) when (failure is not OperationCanceledException)
            {
                topic = null;
                Refused++;
                if (outcome is not null)
                {
                    outcome.Failures[i] = failure;
                }
            }
        }

        outcome?.TrySetResult();
    }

    private async ValueTask ApplyAsync(ClusterCommand command, object? context, CancellationToken token)
    {
        switch (command.Kind)
        {
            case ClusterCommandKind.CreateTopic:
                await registry.CreateAsync(command.Topic, command.Settings!, token).ConfigureAwait(false);
                (context as AppliedOutcome<bool>)?.TrySetResult(true);
                break;

            case ClusterCommandKind.ConsumerCommit:
                if (context is AppliedOutcome<bool> proposed)
                {
                    // The leader recorded the position when its consumer committed; only the other nodes apply it.
                    proposed.TrySetResult(true);
                    break;
                }

                var consumed = await registry.GetForUseAsync(command.Topic, token).ConfigureAwait(false);
                await consumed.ApplyConsumerCommitAsync(command.Consumer!, command.Sequence, token).ConfigureAwait(false);
                break;
        }
    }

    private static void Fail(object? context, Exception failure)
    {
        switch (context)
        {
            case AppliedOutcome<bool> other:
                other.TrySetException(failure);
                break;
            case BatchOutcome batch:
                batch.TrySetException(failure);
                break;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster log entry {Index} could not be applied to this node's topics")]
    private partial void LogApplyFailed(Exception exception, long index);
}
