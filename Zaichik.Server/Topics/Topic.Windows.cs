using Microsoft.Extensions.Logging;
using Zaichik.Server.Storage;

namespace Zaichik.Server.Topics;

/// <summary>
/// The dedup windows across removals: a key window or an idempotent producer's window can outlive the message it
/// remembers (a count or size limit, a retention shorter than the window, a topic without retention that nobody reads,
/// a compaction pass of a topic that keeps the latest value per key, which removes superseded values).
/// Those messages' entries go to the topic's <see cref="WindowFile"/> before the log lets them go, and come back before the
/// log's own when the topic opens, so a restart (or a cluster node starting from a snapshot) remembers exactly what a
/// broker that never stopped remembers.
/// </summary>
internal sealed partial class Topic
{
    /// <summary>
    /// Loads the window file into the windows, but for messages <paramref name="log"/> still holds (a truncation the file
    /// was written for did not happen): the log gives those. Rewrites the file when part of it expired or was damaged.
    /// </summary>
    private WindowFile LoadWindows(TopicLog log, CompactionIndex? keys, ProducerWindow producers)
    {
        var nowMs = NowMs;
        using var kept = new WindowBlock();
        var read = 0;
        var windows = WindowFile.Open(
            Directory,
            (in WindowRecord record) =>
            {
                read++;
                // (A topic that keeps the latest value per key removes messages anywhere in its log, not only below its start.)
                if ((Settings.KeepLatestPerKey || record.Sequence < log.FirstSequence) && Keep(kept, record, nowMs, keys is not null, producers.WindowMs) is { } parts)
                {
                    if (parts.Key)
                    {
                        keys!.Accept(record.Key, record.TimestampMs, record.Sequence);
                    }

                    if (parts.Producer)
                    {
                        producers.Accept(record.Producer, record.TimestampMs, record.Sequence);
                    }
                }
            },
            out var damage);
        foreach (var damaged in damage)
        {
            LogWindowsDamaged(Name, damaged.Bytes, damaged.Offset, windows.Path);
        }

        if (damage.Count > 0 || kept.Count < read || kept.Trimmed)
        {
            windows.Replace(kept);
        }

        return windows;
    }

    /// <summary>
    /// Before the log lets every message below <paramref name="keepSequence"/> go: appends to the window file, and flushes,
    /// what the key window and the producers' window remember of those messages (taken from the windows themselves, under
    /// the gate unless <paramref name="holdingGate"/>; the file is written outside it). <paramref name="onlyExpired"/> says
    /// that every one of them has outlived the retention, which a window no longer than the retention makes a quick no.
    /// False when the file could not be written (logged) or the topic closed meanwhile: the log must then keep them.
    /// </summary>
    private async ValueTask<bool> RememberRemovedAsync(OpenTopic open, long keepSequence, bool onlyExpired, bool holdingGate, CancellationToken cancellationToken)
    {
        if (open.Windows is not { } windows)
        {
            return true;
        }

        // Read outside the gate: a producer accepted meanwhile has a sequence past every message being removed.
        if (open.Keys is null && open.Producers.ProducerCount == 0)
        {
            return true;
        }

        var nowMs = NowMs;
        var longestWindowMs = Math.Max(open.Keys is null ? 0 : Settings.CompactionWindowMs, open.Producers.WindowMs);
        if (onlyExpired && Settings.RetentionTtlMs >= longestWindowMs)
        {
            return true;
        }

        using var removed = new WindowBlock();
        if (!holdingGate)
        {
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        try
        {
            if (!ReferenceEquals(_open, open))
            {
                return false;
            }

            var start = Math.Max(open.WindowsUpTo, open.Log.FirstSequence);
            if (keepSequence <= start)
            {
                return true;
            }

            open.Keys?.CollectAccepted(start, keepSequence, nowMs, removed);
            open.Producers.CollectStored(start, keepSequence, nowMs, removed);
        }
        finally
        {
            if (!holdingGate)
            {
                _gate.Release();
            }
        }

        await _windowsLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!ReferenceEquals(Volatile.Read(ref _open), open))
            {
                return false;
            }

            windows.Append(removed);
            open.WindowsUpTo = Math.Max(open.WindowsUpTo, keepSequence);
            if (windows.WantsRewrite)
            {
                var rewriteMs = NowMs;
                windows.Rewrite((block, record) => Keep(block, record, rewriteMs, open.Keys is not null, open.Producers.WindowMs));
            }

            return true;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            LogWindowsNotWritten(exception, Name);
            return false;
        }
        finally
        {
            _windowsLock.Release();
        }
    }

    /// <summary>
    /// Adds to <paramref name="block"/> the parts of <paramref name="record"/> whose window still runs at
    /// <paramref name="nowMs"/>, and says which (null: none).
    /// </summary>
    private (bool Key, bool Producer)? Keep(WindowBlock block, in WindowRecord record, long nowMs, bool hasKeyWindow, long producerWindowMs)
    {
        var key = record.HasKey && hasKeyWindow && nowMs - record.TimestampMs < Settings.CompactionWindowMs;
        var producer = record.Producer.IsSet && nowMs - record.TimestampMs < producerWindowMs;
        if (key != record.HasKey || producer != record.Producer.IsSet)
        {
            block.Trimmed = true;
        }

        if (!key && !producer)
        {
            return null;
        }

        block.Add(record.Sequence, record.TimestampMs, key, record.Key, producer ? record.Producer : ProducerStamp.None);
        return (key, producer);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic}: {Bytes} bytes of its window file at offset {Offset} could not be read ({Path}); keys and idempotent publishes recorded there, of messages the log no longer holds, may be stored once more within their windows")]
    private partial void LogWindowsDamaged(string topic, long bytes, long offset, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic}: its window file could not be written; messages the key or producers' window still needs are kept in the log until it can be")]
    private partial void LogWindowsNotWritten(Exception exception, string topic);
}
