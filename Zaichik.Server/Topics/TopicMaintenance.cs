using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Zaichik.Server.Hosting;

namespace Zaichik.Server.Topics;

/// <summary>
/// A background loop over every topic, every <see cref="ZaichikServerOptions.SweepInterval"/>: it removes expired
/// messages from disk and forgets stale compaction keys in open topics, closes topics idle for
/// <see cref="ZaichikServerOptions.TopicIdleTimeout"/> (nobody reads them, nothing was published), and opens a closed
/// topic only when one of its messages has expired, to remove it. It runs on the injected <see cref="TimeProvider"/>,
/// so tests drive it by moving time. (Commits are each topic's own: see <see cref="TopicCommitter"/>.)
/// </summary>
internal sealed partial class TopicMaintenance(
    TopicRegistry registry,
    IOptions<ZaichikServerOptions> options,
    TimeProvider time,
    ILogger<TopicMaintenance> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.SweepInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                await SweepAllAsync(stoppingToken).ConfigureAwait(false);
                await CloseIdleAsync(stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Truncates expired messages and forgets stale keys in every open topic, and in closed ones whose oldest message expired.</summary>
    public async ValueTask SweepAllAsync(CancellationToken cancellationToken)
    {
        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var topic in registry.Topics)
        {
            try
            {
                if (topic.ClosedWithExpiredMessages(nowMs))
                {
                    await topic.OpenAsync(cancellationToken).ConfigureAwait(false);
                }

                if (topic.Current is { } open)
                {
                    var before = open.Log.BeginAddress;
                    await topic.SweepAsync(cancellationToken).ConfigureAwait(false);
                    if (open.Log.BeginAddress > before && logger.IsEnabled(LogLevel.Debug))
                    {
                        LogTruncated(topic.Name, before, open.Log.BeginAddress);
                    }
                }
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                LogSweepFailed(exception, topic.Name);
            }
        }
    }

    /// <summary>Closes every open topic nobody reads that was last used at least the idle timeout ago.</summary>
    public async ValueTask<int> CloseIdleAsync(CancellationToken cancellationToken)
    {
        var idle = options.Value.TopicIdleTimeout;
        var closed = 0;
        foreach (var topic in registry.Topics)
        {
            if (topic.Current is not { InUse: false })
            {
                continue;
            }

            try
            {
                if (await topic.TryCloseAsync(idle, cancellationToken).ConfigureAwait(false))
                {
                    closed++;
                }
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                LogCloseFailed(exception, topic.Name);
            }
        }

        if (closed > 0 && logger.IsEnabled(LogLevel.Debug))
        {
            LogClosedIdle(closed, registry.OpenCount);
        }

        return closed;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Retention sweep of topic {Topic} failed")]
    private partial void LogSweepFailed(Exception exception, string topic);

    [LoggerMessage(Level = LogLevel.Error, Message = "Closing idle topic {Topic} failed")]
    private partial void LogCloseFailed(Exception exception, string topic);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Truncated topic {Topic} from {Before} to {After}")]
    private partial void LogTruncated(string topic, long before, long after);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Closed {Closed} idle topics; {Open} remain open")]
    private partial void LogClosedIdle(int closed, int open);
}
