using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Zaichik.Server.Hosting;

namespace Zaichik.Server.Topics;

/// <summary>
/// A background loop over every topic that removes expired records from disk and forgets stale compaction keys
/// every <see cref="ZaichikServerOptions.SweepInterval"/>. It runs on the injected <see cref="TimeProvider"/>,
/// so tests drive it by moving time. (Commits are each topic's own: see <see cref="TopicCommitter"/>.)
/// </summary>
internal sealed partial class TopicMaintenance(
    TopicRegistry registry,
    IOptions<ZaichikServerOptions> options,
    TimeProvider time,
    ILogger<TopicMaintenance> logger) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        RunEveryAsync(options.Value.SweepInterval, SweepAllAsync, stoppingToken);

    /// <summary>Truncates expired records and forgets stale keys in every topic.</summary>
    public async ValueTask SweepAllAsync(CancellationToken cancellationToken)
    {
        foreach (var topic in registry.Topics)
        {
            try
            {
                var before = topic.Log.BeginAddress;
                var after = await topic.SweepAsync(cancellationToken).ConfigureAwait(false);
                if (after > before && logger.IsEnabled(LogLevel.Debug))
                {
                    LogTruncated(topic.Name, before, after);
                }
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                LogSweepFailed(exception, topic.Name);
            }
        }
    }

    private async Task RunEveryAsync(TimeSpan interval, Func<CancellationToken, ValueTask> work, CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                await work(stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Retention sweep of topic {Topic} failed")]
    private partial void LogSweepFailed(Exception exception, string topic);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Truncated topic {Topic} from {Before} to {After}")]
    private partial void LogTruncated(string topic, long before, long after);
}
