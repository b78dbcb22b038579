using Microsoft.Extensions.Logging;
using Zaichik.Protocol;

namespace Zaichik.Client.Extensions.Hosting.Internal;

internal static partial class ConsumerLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Consuming {Topic} (durable name {DurableName}, from {From})")]
    public static partial void Subscribed(ILogger logger, string topic, string? durableName, StartPosition from);

    [LoggerMessage(EventId = 2, Level = LogLevel.Error, Message = "Processing {Topic}@{Sequence} failed; it is not committed")]
    public static partial void ProcessingFailed(ILogger logger, Exception exception, string topic, long sequence);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "{Topic}@{Sequence} will be delivered again in {RetryDelay}")]
    public static partial void WillRetry(ILogger logger, string topic, long sequence, TimeSpan retryDelay);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "{Topic}@{Sequence} is skipped: committed without being processed")]
    public static partial void Skipped(ILogger logger, string topic, long sequence);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "The subscription to {Topic} failed; subscribing again in {RetryDelay}")]
    public static partial void SubscriptionFailed(ILogger logger, Exception exception, string topic, TimeSpan retryDelay);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "The subscription to {Topic} ended; subscribing again")]
    public static partial void SubscriptionEnded(ILogger logger, string topic);

    [LoggerMessage(EventId = 7, Level = LogLevel.Information, Message = "Stopped consuming {Topic}")]
    public static partial void Stopped(ILogger logger, string topic);
}
