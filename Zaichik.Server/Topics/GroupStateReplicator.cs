using Microsoft.Extensions.Logging;
using Zaichik.Server.Storage;

namespace Zaichik.Server.Topics;

/// <summary>
/// On a cluster leader, carries the stored state of a topic's consumer groups to every node through the Raft log, so a new
/// leader resumes each group where the old one left it: what was committed is not delivered again, what was not is, with
/// its delivery count. A change only marks its group; one replication runs at a time per topic and takes each marked
/// group's newest state, so a busy group costs one log entry per round trip, not one per Commit.
/// </summary>
/// <remarks>
/// Versions count changes: <see cref="Changed"/> returns one, and <see cref="WhenReplicatedAsync"/> completes once a
/// state taken after it is on a majority (a Ping's Pong waits for it, as for durable consumers).
/// </remarks>
internal sealed partial class GroupStateReplicator(string topic, ITopicReplication replication, ILogger logger)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Func<GroupSnapshot>> _marked = new(StringComparer.Ordinal);
    private readonly List<(long Version, TaskCompletionSource Done)> _waiters = [];
    private long _version;
    private long _replicated;
    private bool _running;

    /// <summary>Marks <paramref name="group"/>'s state changed; <paramref name="state"/> is asked for it when it is sent. Returns the change's version.</summary>
    public long Changed(string group, Func<GroupSnapshot> state)
    {
        bool start;
        long version;
        lock (_lock)
        {
            _marked[group] = state;
            version = ++_version;
            start = !_running;
            _running = true;
        }

        if (start)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static replicator => _ = replicator.RunAsync(), this, preferLocal: false);
        }

        return version;
    }

    /// <summary>Completes once the change <paramref name="version"/> is on a majority; fails with <see cref="ReplicationUnavailableException"/> when it could not get there.</summary>
    public Task WhenReplicatedAsync(long version)
    {
        lock (_lock)
        {
            if (version <= _replicated)
            {
                return Task.CompletedTask;
            }

            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((version, done));
            return done.Task;
        }
    }

    private async Task RunAsync()
    {
        while (true)
        {
            KeyValuePair<string, Func<GroupSnapshot>>[] marked;
            long upTo;
            lock (_lock)
            {
                if (_marked.Count == 0)
                {
                    _running = false;
                    return;
                }

                marked = [.. _marked];
                _marked.Clear();
                upTo = _version;
            }

            Exception? failure = null;
            foreach (var (group, state) in marked)
            {
                try
                {
                    await replication.ReplicateGroupState(topic, group, state()).ConfigureAwait(false);
                }
                catch (Exception exception)
                {
                    failure ??= exception;
                    LogNotReplicated(topic, group, exception.Message);
                }
            }

            Complete(upTo, failure);
        }
    }

    private void Complete(long upTo, Exception? failure)
    {
        List<TaskCompletionSource>? done = null;
        lock (_lock)
        {
            if (failure is null)
            {
                _replicated = Math.Max(_replicated, upTo);
            }

            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Version <= upTo)
                {
                    (done ??= []).Add(_waiters[i].Done);
                    _waiters.RemoveAt(i);
                }
            }
        }

        foreach (var waiter in done ?? [])
        {
            if (failure is null)
            {
                waiter.TrySetResult();
            }
            else
            {
                waiter.TrySetException(failure is ReplicationUnavailableException ? failure : new ReplicationUnavailableException(failure.Message, failure));
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic}, consumer group {Group}: its state did not reach the other cluster nodes ({Reason}); a new leader resumes it from the last state that did")]
    private partial void LogNotReplicated(string topic, string group, string reason);
}
