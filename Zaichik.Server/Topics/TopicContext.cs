using Microsoft.Extensions.Logging;
using Zaichik.Server.Storage;

namespace Zaichik.Server.Topics;

/// <summary>
/// What every topic of a broker shares: how logs are sized, the descriptor budget, the clock, the limit on open topics
/// and how much each remembers of its idempotent producers.
/// </summary>
internal sealed class TopicContext(
    StorageOptions storage, FileBudget files, OpenTopicLimiter openTopics, TimeProvider time, ILoggerFactory loggers, ProducerWindowOptions? producers = null)
{
    public StorageOptions Storage { get; } = storage;

    public FileBudget Files { get; } = files;

    public OpenTopicLimiter OpenTopics { get; } = openTopics;

    public TimeProvider Time { get; } = time;

    public ILoggerFactory Loggers { get; } = loggers;

    public ProducerWindowOptions Producers { get; } = producers ?? ProducerWindowOptions.Default;

    /// <summary>Where each group flush records how long it took (the <c>Zaichik.Server</c> Meter's), or null.</summary>
    public System.Diagnostics.Metrics.Histogram<double>? FlushDuration { get; init; }

    /// <summary>Most bytes of encoded messages a topic's shared tail holds for its dispatcher (<see cref="Subscriptions.TailFeed"/>).</summary>
    public int MaxTailFeedBytes { get; init; } = Subscriptions.TailFeed.DefaultMaxPendingBytes;

    /// <summary>When topics that keep the latest value per key are compacted.</summary>
    public LogCompactionOptions Compaction { get; init; } = LogCompactionOptions.Default;

    /// <summary>
    /// On a cluster node the topics are a view of the Raft log, which is fsynced by a majority before anything is
    /// acknowledged, and the view is rebuilt at start from the newest snapshot and the log entries after it: an
    /// <c>Always</c> topic's files are then flushed on the default interval rather than per group commit, which would
    /// only repeat the log's fsync on every node.
    /// </summary>
    public bool ReplicatedView { get; init; }

    /// <summary>On a cluster node, where consumer state and dead letters go through the Raft log; null on a single node.</summary>
    public ITopicReplication? Replication { get; set; }
}

/// <summary>
/// What the topics of a cluster node hand to the Raft log rather than do alone (<see cref="Cluster.ClusterNode"/>): the
/// consumer state every node must keep alike, and the messages the broker itself publishes (dead letters).
/// </summary>
internal interface ITopicReplication
{
    /// <summary>Starts replicating a durable consumer's position; the task completes when a majority has it, and fails when it cannot get there.</summary>
    Task ReplicateConsumerCommit(string topic, string consumer, long sequence);

    /// <summary>Replicates a consumer group's stored state (<see cref="GroupSnapshot"/>); completes when a majority has it.</summary>
    /// <exception cref="ReplicationUnavailableException">This node does not lead, or the entry could not be committed.</exception>
    Task ReplicateGroupState(string topic, string group, GroupSnapshot state);

    /// <summary>The dead-letter topic <paramref name="name"/>, created through the log (with <paramref name="retention"/>) when it does not exist.</summary>
    ValueTask<Topic> EnsureDeadLetterTopicAsync(string name, TimeSpan retention, CancellationToken cancellationToken);

    /// <summary>Publishes one message through the log, as a client's publish would be; returns its outcome on this node.</summary>
    ValueTask<PublishOutcome> PublishAsync(string topic, ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte> payload, ReadOnlyMemory<byte> headers, CancellationToken cancellationToken);
}

/// <summary>
/// An <see cref="ITopicReplication"/> operation could not be carried out: this node does not lead (any more), or the
/// cluster could not commit it (no majority, stopping). The client may send it again, to the leader.
/// </summary>
internal sealed class ReplicationUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Bounds how many topics have their log open at once (<c>MaxOpenTopics</c>): each holds pages of memory and a few
/// descriptors. When the bound is reached, opening one more first asks <see cref="MakeRoom"/> (the registry) to close
/// the least recently used idle topics; when none can be closed, the request fails with StorageFailure.
/// </summary>
internal sealed class OpenTopicLimiter(int limit)
{
    private int _open;

    public int Limit { get; } = limit;

    public int Open => Volatile.Read(ref _open);

    /// <summary>Closes idle topics to make room for at least one more; returns how many it closed. Set by the registry.</summary>
    public Func<CancellationToken, ValueTask<int>>? MakeRoom { get; set; }

    /// <summary>Takes a place for one more open topic, making room if needed; false when none can be made.</summary>
    public async ValueTask<bool> TakeAsync(CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 3; attempt++)
        {
            if (TryTake())
            {
                return true;
            }

            if (MakeRoom is null || await MakeRoom(cancellationToken).ConfigureAwait(false) == 0)
            {
                return TryTake();
            }
        }

        return TryTake();
    }

    public void Return() => Interlocked.Decrement(ref _open);

    private bool TryTake()
    {
        while (true)
        {
            var open = Volatile.Read(ref _open);
            if (open >= Limit)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _open, open + 1, open) == open)
            {
                return true;
            }
        }
    }
}
