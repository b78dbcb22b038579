using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Zaichik.Server.Hosting;

namespace Zaichik.Server.Topics;

/// <summary>
/// Two background loops over every topic: one commits appended records to disk every
/// <see cref="ZaichikServerOptions.CommitInterval"/>, the other removes expired records from disk and forgets
/// stale compaction keys every <see cref="ZaichikServerOptions.SweepInterval"/>. Both run on the injected
/// <see cref="TimeProvider"/>, so tests drive them by moving time.
/// </summary>
internal sealed partial class TopicMaintenance(
    TopicRegistry registry,
    IOptions<ZaichikServerOptions> options,
    TimeProvider time,
    ILogger<TopicMaintenance> logger) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(
            RunEveryAsync(options.Value.CommitInterval, CommitAllAsync, stoppingToken),
            RunEveryAsync(options.Value.SweepInterval, SweepAllAsync, stoppingToken));

    /// <summary>Commits every topic with records not yet on disk.</summary>
    public async ValueTask CommitAllAsync(CancellationToken cancellationToken)
    {
        foreach (var topic in registry.Topics)
        {
            try
            {
                await topic.Log.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                LogCommitFailed(exception, topic.Name);
            }
        }
    }

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

    [LoggerMessage(Level = LogLevel.Error, Message = "Commit of topic {Topic} failed")]
    private partial void LogCommitFailed(Exception exception, string topic);

    [LoggerMessage(Level = LogLevel.Error, Message = "Retention sweep of topic {Topic} failed")]
    private partial void LogSweepFailed(Exception exception, string topic);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Truncated topic {Topic} from {Before} to {After}")]
    private partial void LogTruncated(string topic, long before, long after);
}
