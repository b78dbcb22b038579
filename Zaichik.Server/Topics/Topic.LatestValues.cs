using Microsoft.Extensions.Logging;
using Zaichik.Protocol;
using Zaichik.Server.Storage;

namespace Zaichik.Server.Topics;

/// <summary>
/// A topic that keeps the latest value per key (<see cref="TopicSettings.KeepLatestPerKey"/>, Kafka's log compaction):
/// its readers step over superseded values, expired tombstones and expired unkeyed messages (<see cref="LatestValueIndex"/>),
/// and its sweep compacts the log into its compacted part (<see cref="CompactedLog"/>) and truncates the log behind it.
/// </summary>
internal sealed partial class Topic
{
    /// <summary>
    /// Where a subscription to a topic that keeps the latest value per key starts: the stored messages are offered from
    /// the start, a sequence or a time whether or not the topic has a TTL, because its newest values are kept. Without a
    /// TTL, unkeyed messages are not retained: a new subscription gets those published from now on only.
    /// </summary>
    private async ValueTask<(LogReader Reader, long StartSequence)> StartLatestAsync(OpenTopic open, StartPosition from, CancellationToken cancellationToken)
    {
        var log = open.Log;
        (LogReader Reader, long StartSequence) start;
        switch (from.Kind)
        {
            case StartPositionKind.Retained:
                start = (log.OpenReaderAtBegin(), log.FirstSequence);
                break;
            case StartPositionKind.Sequence:
                start = (await log.OpenReaderAtSequenceAsync(from.Value, cancellationToken).ConfigureAwait(false), Math.Max(from.Value, log.FirstSequence));
                break;
            case StartPositionKind.Time:
                var reader = await log.OpenReaderAtTimeAsync(from.Value, cancellationToken).ConfigureAwait(false);
                start = (reader, reader.InCompacted ? await FirstCompactedAtAsync(log, from.Value).ConfigureAwait(false) : FirstSequenceAt(log, reader.Position, from.Value));
                break;
            default:
                return (log.OpenReaderAtTail(), log.NextSequence);
        }

        if (!Settings.HasRetention)
        {
            start.Reader.SkipUnkeyedBefore(log.NextSequence);
        }

        return (start.Reader, Math.Min(start.StartSequence, log.NextSequence));
    }

    /// <summary>The sequence of the first message stamped at or after <paramref name="timestampMs"/>, which lies in the compacted part.</summary>
    private static async ValueTask<long> FirstCompactedAtAsync(TopicLog log, long timestampMs)
    {
        using var probe = await log.OpenReaderAtTimeAsync(timestampMs, CancellationToken.None).ConfigureAwait(false);
        probe.Filter = null;
        if (probe.TryRead(out var message))
        {
            var sequence = message.Sequence;
            probe.Release();
            return sequence;
        }

        return log.FirstSequence;
    }

    /// <summary>
    /// Rebuilds the index of the newest message of each key by reading everything stored, the compacted part and then
    /// the log; while the topic opens, before any reader can consult it.
    /// </summary>
    /// <exception cref="StorageExhaustedException">The log could not be read to its end (no descriptor came free): the topic cannot be opened now.</exception>
    private async ValueTask<LatestValueIndex> RestoreLatestAsync(TopicLog log)
    {
        var latest = new LatestValueIndex(Settings.RetentionTtlMs, Settings.TombstoneRetentionMs, _context.Time);
        using var reader = log.OpenReaderAtBegin();
        reader.Filter = null;
        var stalled = 0;
        while (true)
        {
            var read = false;
            while (reader.TryRead(out var message))
            {
                latest.Restore(message);
                reader.Release();
                read = true;
            }

            if (!reader.InCompacted && (reader.Position >= log.TailAddress || reader.LastSequence >= log.LastSequence))
            {
                break;
            }

            // Short of descriptors the reader waits a moment; an index missing keys would hide their values.
            stalled = read ? 0 : stalled + 1;
            if (stalled > MaxRestoreStalls || !await reader.WaitAsync(CancellationToken.None).ConfigureAwait(false))
            {
                throw new StorageExhaustedException($"topic '{Name}' could not be read to its end to index its keys");
            }
        }

        latest.Restored(log.LastSequence);
        return latest;
    }

    /// <summary>How many times in a row reading the log at open may find nothing before giving up (each wait is 100 ms when short of descriptors).</summary>
    private const int MaxRestoreStalls = 100;

    /// <summary>
    /// The sweep of a topic that keeps the latest value per key: forgets stale window entries, compacts when enough of
    /// the log is not compacted yet (<see cref="LogCompactionOptions"/>), a tombstone or unkeyed message has expired, or a
    /// count or size limit is exceeded, and truncates the log at the compacted part's cut unless a reader is below it.
    /// </summary>
    private async ValueTask SweepLatestAsync(OpenTopic open, CancellationToken cancellationToken)
    {
        var log = open.Log;
        var nowMs = NowMs;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!ReferenceEquals(_open, open))
            {
                return;
            }

            open.Keys?.Sweep(nowMs);
            open.Producers.Sweep(nowMs);
        }
        finally
        {
            _gate.Release();
        }

        if (open.Latest is not { } latest || log.InMemory)
        {
            return;
        }

        // Counted as a pump meanwhile, so that the topic is not closed for idleness under the pass.
        open.PumpStarted();
        try
        {
            var excess = Excess(log);
            if (CompactionDue(log, latest, nowMs) || excess.Messages > 0 || excess.Bytes > 0)
            {
                await CompactAsync(open, latest, nowMs, default, cancellationToken).ConfigureAwait(false);
                excess = Excess(log);
                if (excess.Messages > 0 || excess.Bytes > 0)
                {
                    await CompactAsync(open, latest, nowMs, excess, cancellationToken).ConfigureAwait(false);
                }
            }

            await TruncateCompactedAsync(open, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            open.PumpEnded();
        }
    }

    private bool CompactionDue(TopicLog log, LatestValueIndex latest, long nowMs)
    {
        var options = _context.Compaction;
        var clean = log.Compacted?.DataEnd ?? 0;
        var dirty = log.TailAddress - log.LogStart;
        return nowMs >= latest.NextExpiryMs
            || (dirty > 0 && dirty >= options.MinBytes && dirty * (1 - options.MinDirtyRatio) >= clean * options.MinDirtyRatio);
    }

    /// <summary>How far the topic is past its <see cref="TopicSettings.MaxMessages"/> and <see cref="TopicSettings.MaxBytes"/>.</summary>
    private Excess Excess(TopicLog log)
    {
        var messages = Settings.MaxMessages > 0 ? log.CountAfter(log.FirstSequence - 1) - Settings.MaxMessages : 0;
        var bytes = Settings.MaxBytes > 0 ? (log.Compacted?.DataEnd ?? 0) + (log.TailAddress - log.LogStart) - Settings.MaxBytes : 0;
        return new Excess(Math.Max(0, messages), Math.Max(0, bytes));
    }

    /// <summary>
    /// One compaction pass: what it keeps is the newest message of each key (a tombstone until its retention runs out),
    /// and the unkeyed messages the TTL keeps, or without one those a durable consumer has not committed; the oldest of
    /// them go first when <paramref name="trim"/> asks.
    /// </summary>
    private async ValueTask CompactAsync(OpenTopic open, LatestValueIndex latest, long nowMs, Excess trim, CancellationToken cancellationToken)
    {
        var forget = new List<(byte[] Key, long Sequence)>();
        var keptExpiry = long.MaxValue;
        var lowestConsumer = Settings.HasRetention ? null : open.Positions.Lowest();
        var (trimMessages, trimBytes) = (trim.Messages, trim.Bytes);
        var carried = latest.TakePendingExpiry();

        // What the key and producers' windows still need of the messages the pass removes goes to the window file before
        // the compacted file is put in place (a compacted-away value may be a producer's publish sent again later).
        var removed = open.Windows is null ? null : new WindowsRemoval(new WindowBlock(), open.Keys is null ? long.MaxValue : nowMs - Settings.CompactionWindowMs, nowMs - open.Producers.WindowMs);
        CompactionPass? pass;
        try
        {
            pass = await open.Log.CompactAsync(
                message =>
                {
                    var verdict = Judge(message);
                    if (verdict != CompactionVerdict.Keep)
                    {
                        removed?.Add(message);
                    }

                    return verdict;
                },
                cancellationToken,
                removed is null ? null : () => open.Windows!.Append(removed.Block)).ConfigureAwait(false);
        }
        catch
        {
            latest.PassEnded(latest.NextExpiryMs, carried);
            throw;
        }
        finally
        {
            removed?.Block.Dispose();
        }

        if (pass is null)
        {
            latest.PassEnded(latest.NextExpiryMs, carried);
            return;
        }

        // What the pass took but left in the log (not durable yet) may still expire there.
        latest.PassEnded(keptExpiry, pass.NextSequence <= open.Log.LastSequence ? carried : long.MaxValue);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var (key, sequence) in forget)
            {
                latest.Forget(key, sequence);
            }

            Counters.CompactedRemoved(pass.Count(CompactionVerdict.Compacted));
            Counters.ExpiredRemoved(pass.Count(CompactionVerdict.Expired));
            Counters.TrimmedRemoved(pass.Count(CompactionVerdict.Trimmed));
        }
        finally
        {
            _gate.Release();
        }

        LogCompacted(Name, pass.Compacted.Generation, pass.Count(CompactionVerdict.Keep), pass.Verdicts.Sum() - pass.Count(CompactionVerdict.Keep),
            pass.BytesBefore, pass.BytesAfter);

        CompactionVerdict Judge(LogMessage message)
        {
            if (trimMessages > 0 || trimBytes > 0)
            {
                trimMessages--;
                trimBytes -= LogRecord.SizeOf(message.Key.Length, message.Headers.Length, message.Payload.Length, message.Producer) + Storage.Internal.PageEntries.EntryHeaderSize;
                Forget(message);
                return CompactionVerdict.Trimmed;
            }

            if (message.HasKey)
            {
                if (latest.IsSuperseded(message.Key, message.Sequence))
                {
                    return CompactionVerdict.Compacted;
                }

                if (latest.IsExpiredTombstone(message, nowMs))
                {
                    Forget(message);
                    return CompactionVerdict.Compacted;
                }
            }
            else if (Settings.HasRetention ? nowMs - message.TimestampMs >= Settings.RetentionTtlMs : lowestConsumer is not { } lowest || message.Sequence <= lowest)
            {
                return Settings.HasRetention ? CompactionVerdict.Expired : CompactionVerdict.Consumed;
            }

            keptExpiry = Math.Min(keptExpiry, latest.ExpiryOf(message));
            return CompactionVerdict.Keep;
        }

        // A key whose newest message goes is forgotten (if nothing newer came meanwhile): no older value of it is left.
        void Forget(LogMessage message)
        {
            if (message.HasKey && !latest.IsSuperseded(message.Key, message.Sequence))
            {
                forget.Add((message.Key.ToArray(), message.Sequence));
            }
        }
    }

    /// <summary>
    /// Truncates the log at its compacted part's cut, or as far towards it as the slowest reader allows (a reader in the
    /// log below the cut, or in an older compacted file, holds what it goes on to read). Committed at the next flush,
    /// which frees whole segments.
    /// </summary>
    private async ValueTask TruncateCompactedAsync(OpenTopic open, CancellationToken cancellationToken)
    {
        var log = open.Log;
        if (log.Compacted is not { } compacted || compacted.CutAddress <= log.BeginAddress)
        {
            return;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!ReferenceEquals(_open, open))
            {
                return;
            }

            var until = open.SlowestCursor() is { } slowest ? Math.Min(slowest.Position, compacted.CutAddress) : compacted.CutAddress;
            if (until <= log.BeginAddress)
            {
                return;
            }

            log.TruncateUntil(until, until == compacted.CutAddress ? compacted.NextSequence : FirstSequenceFrom(log, until));
            open.Committer?.MarkDirty();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The sequence of the first message stored at or after <paramref name="address"/> in the log, or the next one.</summary>
    private static long FirstSequenceFrom(TopicLog log, long address)
    {
        using var reader = log.OpenReader(address, 0);
        reader.Filter = null;
        if (reader.TryRead(out var message))
        {
            var sequence = message.Sequence;
            reader.Release();
            return sequence;
        }

        return log.NextSequence;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Topic {Topic} compacted (generation {Generation}): {Kept} messages kept, {Removed} removed; {Before} bytes become {After}")]
    private partial void LogCompacted(string topic, long generation, long kept, long removed, long before, long after);
}

/// <summary>The window entries of the messages a compaction pass removes: those whose key or producer window still runs.</summary>
internal sealed record WindowsRemoval(WindowBlock Block, long KeysFromMs, long ProducersFromMs)
{
    public void Add(LogMessage message) =>
        Block.Add(
            message.Sequence,
            message.TimestampMs,
            message.HasKey && message.TimestampMs >= KeysFromMs,
            message.Key,
            message.Producer.IsSet && message.TimestampMs >= ProducersFromMs ? message.Producer : ProducerStamp.None);
}

/// <summary>How many messages and bytes a topic holds beyond its limits.</summary>
internal readonly record struct Excess(long Messages, long Bytes);
