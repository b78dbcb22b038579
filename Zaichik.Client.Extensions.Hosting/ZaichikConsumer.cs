using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Zaichik.Client.Extensions.Hosting.Internal;
using Zaichik.Protocol;

namespace Zaichik.Client.Extensions.Hosting;

/// <summary>
/// A hosted service that subscribes to one topic with the app's <see cref="ZaichikClient"/> and hands its messages,
/// deserialized to <typeparamref name="T"/>, to <see cref="ProcessAsync"/> one at a time in sequence order, committing
/// each after <see cref="ProcessAsync"/> returns. Register a subclass with <c>services.AddHostedService&lt;MyConsumer&gt;()</c>.
/// </summary>
/// <remarks>
/// <para>
/// Delivery is at least once. When <see cref="ProcessAsync"/> throws, the failure is logged and
/// <see cref="OnProcessingFailedAsync"/> decides: by default (<see cref="ZaichikConsumerFailureAction.Retry"/>) the message
/// is not committed, the consumer unsubscribes, waits <see cref="RetryDelay"/> and subscribes again starting at that
/// message, so it is delivered again (a durable consumer resumes after its last commit, which is the same message).
/// A lost connection, a refused subscription or an undecodable payload is handled the same way: logged, then a new
/// subscription after <see cref="RetryDelay"/>, from the first message not yet committed.
/// </para>
/// <para>
/// A message can be delivered again only while the broker still has it: on a topic with retention, or for a durable
/// consumer that has committed before (the broker keeps what it has not committed). On a topic without retention a
/// non-durable consumer's failed message is gone, and the new subscription continues with live messages.
/// </para>
/// <para>
/// Each message is processed inside an <see cref="Activity"/> named <c>{topic} process</c>, of kind
/// <see cref="ActivityKind.Consumer"/>, from the <see cref="ZaichikTelemetry.ActivitySourceName"/> source, whose parent
/// is the publisher's span (<see cref="ZaichikMessage.ParentContext"/>, from the message's <c>traceparent</c> and
/// <c>tracestate</c> headers).
/// </para>
/// <para>
/// On host shutdown the token passed to <see cref="ProcessAsync"/> is cancelled; a message whose processing is cancelled
/// is not committed and is delivered again on the next start when the consumer is durable. A message that was
/// processed is still committed while the host stops (within the client's <see cref="ZaichikClientOptions.RequestTimeout"/>).
/// </para>
/// </remarks>
/// <typeparam name="T">The messages' type, decoded by <see cref="Serializer"/>.</typeparam>
public abstract class ZaichikConsumer<T> : BackgroundService
{
    private static readonly ActivitySource Source = new(ZaichikTelemetry.ActivitySourceName);

    // The first sequence not yet committed by this instance, where a new subscription starts; null until one is committed
    // or one fails, so the first subscription starts where SubscribeOptions says.
    private long? _resumeAt;

    /// <summary>Creates a consumer that uses <paramref name="client"/> and logs to <paramref name="logger"/>.</summary>
    protected ZaichikConsumer(ZaichikClient client, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(logger);
        Client = client;
        Logger = logger;
    }

    /// <summary>The client the consumer subscribes and commits with.</summary>
    protected ZaichikClient Client { get; }

    /// <summary>The consumer's logger.</summary>
    protected ILogger Logger { get; }

    /// <summary>The topic to consume.</summary>
    protected abstract string Topic { get; }

    /// <summary>
    /// How to subscribe: where to start, the prefetch, and a <see cref="SubscribeOptions.DurableName"/> to resume after
    /// the last commit across restarts, or a <see cref="SubscribeOptions.Group"/> to share the topic with the other
    /// instances of the service (a failed message is then given back with Nack for <see cref="RetryDelay"/>, and the
    /// consumer goes on with the next one). Default <see cref="SubscribeOptions.Default"/> (retained messages first, prefetch 1,
    /// not durable). <see cref="SubscribeOptions.AutoCommit"/> is ignored: the consumer commits each message itself.
    /// </summary>
    protected virtual SubscribeOptions SubscribeOptions => SubscribeOptions.Default;

    /// <summary>Decodes the payloads. Default null: the client's default serializer (JSON).</summary>
    protected virtual IZaichikSerializer<T>? Serializer => null;

    /// <summary>How long to wait before subscribing again after a failure. Default 5 s; must be positive.</summary>
    protected virtual TimeSpan RetryDelay => TimeSpan.FromSeconds(5);

    /// <summary>
    /// Processes one message. Return normally to have it committed; throw to have <see cref="OnProcessingFailedAsync"/>
    /// decide what happens to it. <paramref name="cancellationToken"/> fires when the host stops.
    /// </summary>
    protected abstract Task ProcessAsync(ZaichikMessage<T> message, CancellationToken cancellationToken);

    /// <summary>
    /// Decides what to do with a message whose <see cref="ProcessAsync"/> threw <paramref name="exception"/> (already
    /// logged). Default <see cref="ZaichikConsumerFailureAction.Retry"/>; return <see cref="ZaichikConsumerFailureAction.Skip"/>
    /// to commit it and go on, for example after writing it to a dead-letter topic.
    /// </summary>
    protected virtual ValueTask<ZaichikConsumerFailureAction> OnProcessingFailedAsync(
        ZaichikMessage<T> message, Exception exception, CancellationToken cancellationToken) =>
        ValueTask.FromResult(ZaichikConsumerFailureAction.Retry);

    /// <inheritdoc />
    protected sealed override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var topic = Topic;
        var retryDelay = RetryDelay;
        ArgumentException.ThrowIfNullOrWhiteSpace(topic, nameof(Topic));
        if (retryDelay <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(RetryDelay), retryDelay, "RetryDelay must be positive");
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await ConsumeAsync(topic, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                ConsumerLog.SubscriptionFailed(Logger, e, topic, retryDelay);
            }

            try
            {
                await Task.Delay(retryDelay, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        ConsumerLog.Stopped(Logger, topic);
    }

    /// <summary>Subscribes and processes until the host stops (returns) or a message is to be retried (returns).</summary>
    private async Task ConsumeAsync(string topic, CancellationToken stoppingToken)
    {
        var options = SubscribeOptions with { AutoCommit = false };
        if (_resumeAt is { } resumeAt && options.Group is null)
        {
            options = options with { From = StartPosition.Sequence(resumeAt) };
        }

        var subscription = await Client.SubscribeAsync(topic, options, Serializer, stoppingToken).ConfigureAwait(false);
        try
        {
            ConsumerLog.Subscribed(Logger, topic, options.DurableName, options.From);
            await foreach (var message in subscription.WithCancellation(stoppingToken).ConfigureAwait(false))
            {
                if (!await HandleAsync(message, stoppingToken).ConfigureAwait(false))
                {
                    return;
                }
            }

            if (!stoppingToken.IsCancellationRequested)
            {
                ConsumerLog.SubscriptionEnded(Logger, topic);
            }
        }
        finally
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Processes and commits one message; false when it is to be delivered again.</summary>
    private async ValueTask<bool> HandleAsync(ZaichikMessage<T> message, CancellationToken stoppingToken)
    {
        using (var activity = StartProcessActivity(message))
        {
            try
            {
                await ProcessAsync(message, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                activity?.SetStatus(ActivityStatusCode.Error, "cancelled: the host is stopping");
                throw;
            }
            catch (Exception e)
            {
                activity?.AddException(e);
                activity?.SetStatus(ActivityStatusCode.Error, e.Message);
                ConsumerLog.ProcessingFailed(Logger, e, message.Topic, message.Sequence);
                if (await OnProcessingFailedAsync(message, e, stoppingToken).ConfigureAwait(false) == ZaichikConsumerFailureAction.Retry)
                {
                    if (SubscribeOptions.Group is not null)
                    {
                        // A group member gives the message back: the group delivers it again after the delay, perhaps to
                        // another instance, counting towards its MaxDeliver; this one goes on with the next message.
                        ConsumerLog.WillRetry(Logger, message.Topic, message.Sequence, RetryDelay);
                        await Client.NackAsync(message.Message, RetryDelay, CancellationToken.None).ConfigureAwait(false);
                        return true;
                    }

                    _resumeAt = message.Sequence;
                    ConsumerLog.WillRetry(Logger, message.Topic, message.Sequence, RetryDelay);
                    return false;
                }

                ConsumerLog.Skipped(Logger, message.Topic, message.Sequence);
            }
        }

        // Not cancelled by the host stopping: a message that was processed should not be processed again.
        await Client.CommitAsync(message, CancellationToken.None).ConfigureAwait(false);
        _resumeAt = message.Sequence + 1;
        return true;
    }

    private Activity? StartProcessActivity(ZaichikMessage<T> message)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        var activity = Source.StartActivity($"{message.Topic} process", ActivityKind.Consumer, message.Message.ParentContext);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("messaging.system", "zaichik");
            activity.SetTag("messaging.operation.type", "process");
            activity.SetTag("messaging.destination.name", message.Topic);
            activity.SetTag("zaichik.sequence", message.Sequence);
            if ((SubscribeOptions.Group ?? SubscribeOptions.DurableName) is { } consumerName)
            {
                activity.SetTag("messaging.consumer.group.name", consumerName);
            }
        }

        return activity;
    }
}
