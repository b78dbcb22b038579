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
/// The topics are a view of the Raft log. Every <see cref="ClusterOptions.SnapshotEntries"/> entries the node writes a
/// snapshot of the view (<see cref="ClusterSnapshots"/>), after which the write-ahead log deletes the entries it
/// covers. A node starts from its newest snapshot (placed into a fresh view before the host starts, see
/// <c>ZaichikServer.ClusterDataFolders</c>) and the log replays only what follows it, so an entry is never applied
/// twice to the same files. A node too far behind is sent the leader's snapshot and installs it in place of its view.
/// The log is compacted up to the snapshot before the newest, so a newest snapshot found damaged costs only the time
/// to replay the entries after the one before it (unless the damage is in a sealed segment both share: see the README).
/// </remarks>
internal sealed partial class ReplicatedState(
    TopicRegistry registry, ClusterSnapshots snapshots, SnapshotFile? restored, string viewPath, long snapshotEntries, TimeProvider time, ILogger logger,
    System.Diagnostics.Metrics.Histogram<double>? durations = null) : IStateMachine
{
    private long _lastApplied = restored?.Index ?? 0;
    private volatile SnapshotFile? _snapshot = restored;

    // What the write-ahead log is told is the snapshot (it deletes its entries up to it, and sends it to a follower too
    // far behind): the one before the newest, so that when the newest is found damaged at start the node restores the
    // one before and replays the entries after it. After an install, the installed one. At start, the one kept before
    // the restored one, or the restored one.
    private volatile SnapshotFile? _retained = restored is null ? null
        : snapshots.List().LastOrDefault(snapshot => snapshot.Index < restored.Index) ?? restored;
    private long _appliedSinceStart;

    /// <summary>The index of the last entry applied to the topics.</summary>
    public long LastApplied => Volatile.Read(ref _lastApplied);

    /// <summary>Entries whose outcome was an error on this node (a refused CreateTopic, a storage failure).</summary>
    public long Refused { get; private set; }

    /// <summary>The index of the snapshot this node started from (0: none, the whole Raft log was replayed).</summary>
    public long RestoredIndex { get; } = restored?.Index ?? 0;

    /// <summary>The newest snapshot: taken here or installed from the leader; null when there is none.</summary>
    public SnapshotFile? Snapshot => _snapshot;

    /// <summary>The newest snapshot installed from a leader since this node started; null when none was.</summary>
    public SnapshotFile? LastInstalled { get; private set; }

    /// <summary>Entries applied one by one since this node started (a snapshot installed counts none).</summary>
    public long AppliedSinceStart => Interlocked.Read(ref _appliedSinceStart);

    /// <summary>Snapshots taken here and installed from a leader since this node started.</summary>
    public (long Taken, long Installed) SnapshotCounts => (Interlocked.Read(ref _taken), Interlocked.Read(ref _installed));

    private readonly Lock _snapshotLock = new();
    private readonly CancellationTokenSource _stopping = new();
    private Task _completing = Task.CompletedTask;
    private long _failedAt;
    private long _taken;
    private long _installed;

    /// <summary>How the newest snapshot taken here was frozen: what applying waited for. Null until one was.</summary>
    public SnapshotFreeze? LastFreeze { get; private set; }

    /// <summary>For tests: runs before a frozen view is summed and made the snapshot.</summary>
    internal Func<Task>? BeforeArchive { get; set; }

    ISnapshot? ISnapshotManager.Snapshot => _retained;

    /// <summary>The snapshot the write-ahead log may compact up to: the one before the newest (see the field).</summary>
    public SnapshotFile? Retained => _retained;

    ValueTask ISnapshotManager.ReclaimGarbageAsync(long watermark, CancellationToken token)
    {
        snapshots.DeleteBelow(watermark);
        return ValueTask.CompletedTask;
    }

    async ValueTask<long> IStateMachine.ApplyAsync(LogEntry entry, CancellationToken token)
    {
        if (entry.IsSnapshot)
        {
            return await InstallAsync(entry, token).ConfigureAwait(false);
        }

        if (entry.Index <= LastApplied)
        {
            // Already in the view (a snapshot covers it).
            return LastApplied;
        }

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
        Interlocked.Increment(ref _appliedSinceStart);
        if (snapshotEntries > 0 && entry.Index - Math.Max(_snapshot?.Index ?? 0, Interlocked.Read(ref _failedAt)) >= snapshotEntries
            && _completing.IsCompleted)
        {
            await TakeSnapshotAsync(entry.Index, entry.Term, token).ConfigureAwait(false);
        }

        return entry.Index;
    }

    /// <summary>
    /// Takes a snapshot of the view as it is after entry <paramref name="index"/>. Applying waits only while its files
    /// are frozen (<see cref="FrozenView"/>: this runs inside <see cref="IStateMachine.ApplyAsync"/>, and each topic's
    /// files are committed and held still while its mutable files are copied and the others linked); the frozen files are
    /// then summed and flushed in the background, and become the newest snapshot once they are on disk. A failure is
    /// logged and leaves the previous snapshot in place: the Raft log keeps the entries.
    /// </summary>
    private async ValueTask TakeSnapshotAsync(long index, long term, CancellationToken token)
    {
        var started = time.GetTimestamp();
        FrozenView? frozen = null;
        try
        {
            frozen = snapshots.Freeze(index, term);
            // The catalog and whatever else lies at the top: only applying entries changes them.
            frozen.Add(viewPath, viewPath, recursive: false);
            var topicsRoot = Path.Combine(viewPath, "topics");
            await registry.CopyTopicFilesAsync(
                topic =>
                {
                    frozen.Add(viewPath, Path.Combine(topicsRoot, topic.Name), recursive: true);
                    return ValueTask.CompletedTask;
                },
                token).ConfigureAwait(false);
        }
        catch (Exception failure)
        {
            frozen?.Delete();
            if (failure is OperationCanceledException)
            {
                throw;
            }

            // Not again at the next entry: after as many entries again.
            Interlocked.Exchange(ref _failedAt, index);
            LogSnapshotFailed(failure, index);
            return;
        }

        var held = time.GetElapsedTime(started);
        durations?.Record(held.TotalSeconds, new KeyValuePair<string, object?>("phase", "freeze"));
        LastFreeze = new SnapshotFreeze(index, frozen.Linked.Files, frozen.Linked.Bytes, frozen.Copied.Files, frozen.Copied.Bytes, held);
        _completing = Task.Run(() => CompleteSnapshotAsync(frozen, started, held), CancellationToken.None);
    }

    /// <summary>Completes a frozen view (sums, flushes, manifest) and makes it the newest snapshot (unless a newer one was installed meanwhile).</summary>
    private async Task CompleteSnapshotAsync(FrozenView frozen, long started, TimeSpan held)
    {
        try
        {
            if (BeforeArchive is { } before)
            {
                await before().WaitAsync(_stopping.Token).ConfigureAwait(false);
            }

            var written = snapshots.Complete(frozen, _snapshot, _stopping.Token);
            lock (_snapshotLock)
            {
                if (_snapshot is { } newest && newest.Index >= written.Index)
                {
                    // A leader's snapshot was installed while this one was written: it is newer, and this one is of no use.
                    if (newest.Index > written.Index)
                    {
                        ClusterSnapshots.Delete(written);
                    }

                    return;
                }

                // The Raft log keeps the entries after the previous snapshot, which stays as the fallback of this one.
                _retained = _snapshot;
                _snapshot = written;
            }

            Interlocked.Increment(ref _taken);
            durations?.Record(time.GetElapsedTime(started).TotalSeconds, new KeyValuePair<string, object?>("phase", "total"));
            LogSnapshotTaken(
                frozen.Index, frozen.Term, written.Bytes, time.GetElapsedTime(started).TotalMilliseconds, held.TotalMilliseconds,
                frozen.Copied.Files, frozen.Copied.Bytes, frozen.Linked.Files, frozen.Linked.Bytes, written.Reused.Files, written.Reused.Bytes);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // The node stops; the next start deletes what is left half written.
        }
        catch (Exception failure)
        {
            Interlocked.Exchange(ref _failedAt, frozen.Index);
            LogSnapshotFailed(failure, frozen.Index);
        }
        finally
        {
            frozen.Delete();
        }
    }

    /// <summary>Stops completing a snapshot, if one is being completed, and waits until it has stopped.</summary>
    public async ValueTask StopAsync()
    {
        if (!_stopping.IsCancellationRequested)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
        }

        await _completing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>
    /// Installs the snapshot a leader sent in place of this node's view: every topic is closed and forgotten, the
    /// snapshot is stored, the view rebuilt from it and the topics read again. Returns the snapshot's index.
    /// </summary>
    private async ValueTask<long> InstallAsync(LogEntry entry, CancellationToken token)
    {
        var started = time.GetTimestamp();
        var received = await snapshots.ReceiveAsync(entry, token).ConfigureAwait(false);
        await registry.ReplaceAllAsync(() =>
        {
            // Each file was summed as it was written (and checked against the manifest the leader sent): no second read.
            ClusterSnapshots.Restore(received, viewPath, verified: true);
            return ValueTask.CompletedTask;
        }, token).ConfigureAwait(false);
        lock (_snapshotLock)
        {
            _retained = received;
            _snapshot = received;
        }

        LastInstalled = received;

        Volatile.Write(ref _lastApplied, received.Index);
        Interlocked.Increment(ref _installed);
        durations?.Record(time.GetElapsedTime(started).TotalSeconds, new KeyValuePair<string, object?>("phase", "install"));
        LogSnapshotInstalled(received.Index, received.Term, received.Bytes, time.GetElapsedTime(started).TotalMilliseconds);
        return received.Index;
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

            case ClusterCommandKind.GroupState:
                if (context is AppliedOutcome<bool> replicated)
                {
                    // The leader's live group has this state already (or a newer one); only the other nodes store it.
                    replicated.TrySetResult(true);
                    break;
                }

                var grouped = await registry.GetForUseAsync(command.Topic, token).ConfigureAwait(false);
                await grouped.ApplyGroupStateAsync(command.Consumer!, command.Group!, token).ConfigureAwait(false);
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Cluster snapshot taken at entry {Index} (term {Term}): {Bytes} bytes in {Ms:0} ms, of which applying waited {HeldMs:0.0} ms ({CopiedFiles} files of {CopiedBytes} bytes copied, {LinkedFiles} of {LinkedBytes} bytes linked, {ReusedFiles} of {ReusedBytes} bytes shared with the previous snapshot and not summed again); the Raft log up to it can go")]
    private partial void LogSnapshotTaken(long index, long term, long bytes, double ms, double heldMs, int copiedFiles, long copiedBytes, int linkedFiles, long linkedBytes, int reusedFiles, long reusedBytes);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cluster snapshot at entry {Index} (term {Term}) installed from the leader: {Bytes} bytes in {Ms:0} ms; the topics were rebuilt from it")]
    private partial void LogSnapshotInstalled(long index, long term, long bytes, double ms);

    [LoggerMessage(Level = LogLevel.Error, Message = "Cluster snapshot at entry {Index} failed; the previous one stays and the Raft log keeps its entries")]
    private partial void LogSnapshotFailed(Exception exception, long index);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster log entry {Index} could not be applied to this node's topics")]
    private partial void LogApplyFailed(Exception exception, long index);
}

/// <summary>How a snapshot's files were frozen: the files copied and linked, and how long applying waited for them.</summary>
internal sealed record SnapshotFreeze(long Index, int LinkedFiles, long LinkedBytes, int CopiedFiles, long CopiedBytes, TimeSpan Held);
