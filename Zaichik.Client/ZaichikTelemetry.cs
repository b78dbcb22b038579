using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;

namespace Zaichik.Client;

/// <summary>
/// The names under which the client reports traces and metrics, for OpenTelemetry's <c>AddSource</c> and
/// <c>AddMeter</c>. Spans: <c>{topic} publish</c> (Producer, until the Ack), <c>{topic} receive</c> (Consumer, when a
/// message arrives, child of the publisher's span through the <c>traceparent</c> header). Instruments:
/// <c>zaichik.client.published</c>, <c>zaichik.client.received</c>, <c>zaichik.client.committed</c> (messages),
/// <c>zaichik.client.publish.duration</c> (seconds from the call to the Ack), <c>zaichik.client.reconnects</c>,
/// <c>zaichik.client.redirects</c> (connections a cluster node turned away, tagged <c>zaichik.redirect.reason</c>:
/// <c>redirect</c> or <c>no_leader</c>).
/// </summary>
public static class ZaichikTelemetry
{
    /// <summary>The name of the client's <see cref="System.Diagnostics.ActivitySource"/>.</summary>
    public const string ActivitySourceName = "Zaichik.Client";

    /// <summary>The name of the client's <see cref="System.Diagnostics.Metrics.Meter"/>.</summary>
    public const string MeterName = "Zaichik.Client";

    /// <summary>The header carrying the W3C trace context of the publisher's span.</summary>
    public const string TraceParentHeader = "traceparent";

    /// <summary>The header carrying the W3C trace state, when there is one.</summary>
    public const string TraceStateHeader = "tracestate";

    private static readonly string? Version = typeof(ZaichikTelemetry).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;

    internal static readonly ActivitySource Source = new(ActivitySourceName, Version);

    internal static readonly Meter Meter = new(MeterName, Version);

    private static readonly Counter<long> PublishedCounter = Meter.CreateCounter<long>(
        "zaichik.client.published", "{message}", "Publishes the server acknowledged (stored or dropped as a duplicate).");

    private static readonly Counter<long> ReceivedCounter = Meter.CreateCounter<long>(
        "zaichik.client.received", "{message}", "Messages delivered to subscriptions.");

    private static readonly Counter<long> CommittedCounter = Meter.CreateCounter<long>(
        "zaichik.client.committed", "{commit}", "Commits sent.");

    private static readonly Counter<long> ReconnectsCounter = Meter.CreateCounter<long>(
        "zaichik.client.reconnects", "{reconnect}", "Connections re-established after a loss.");

    private static readonly Counter<long> RedirectsCounter = Meter.CreateCounter<long>(
        "zaichik.client.redirects", "{redirect}", "Connections left because a cluster node redirected a request to its topic's leader or knew no leader.");

    private static readonly Histogram<double> PublishDuration = Meter.CreateHistogram<double>(
        "zaichik.client.publish.duration", "s", "Time from a publish call to its Ack.");

    /// <summary>A timestamp to measure a publish from, or 0 when nobody listens to the histogram.</summary>
    internal static long PublishStarted() => PublishDuration.Enabled ? Stopwatch.GetTimestamp() : 0;

    internal static void Published(string? topic, long startedTimestamp)
    {
        if (PublishedCounter.Enabled)
        {
            PublishedCounter.Add(1, new KeyValuePair<string, object?>("messaging.destination.name", topic));
        }

        if (startedTimestamp != 0)
        {
            PublishDuration.Record(
                Stopwatch.GetElapsedTime(startedTimestamp).TotalSeconds, new KeyValuePair<string, object?>("messaging.destination.name", topic));
        }
    }

    internal static void Received(string topic)
    {
        if (ReceivedCounter.Enabled)
        {
            ReceivedCounter.Add(1, new KeyValuePair<string, object?>("messaging.destination.name", topic));
        }
    }

    internal static void Committed()
    {
        if (CommittedCounter.Enabled)
        {
            CommittedCounter.Add(1);
        }
    }

    internal static void Reconnected() => ReconnectsCounter.Add(1);

    internal static void Redirected(bool toLeader) =>
        RedirectsCounter.Add(1, new KeyValuePair<string, object?>("zaichik.redirect.reason", toLeader ? "redirect" : "no_leader"));

    /// <summary>The publish span, when anyone listens: a Producer span named for the topic.</summary>
    internal static Activity? StartPublish(string topic)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        var activity = Source.StartActivity($"{topic} publish", ActivityKind.Producer);
        activity?.SetTag("messaging.system", "zaichik");
        activity?.SetTag("messaging.operation.type", "send");
        activity?.SetTag("messaging.destination.name", topic);
        return activity;
    }

    /// <summary>A Consumer span for a delivery, child of the publisher's span when the message carries its context.</summary>
    internal static void RecordReceive(ZaichikMessage message)
    {
        if (!Source.HasListeners())
        {
            return;
        }

        using var activity = Source.StartActivity($"{message.Topic} receive", ActivityKind.Consumer, message.ParentContext);
        activity?.SetTag("messaging.system", "zaichik");
        activity?.SetTag("messaging.operation.type", "receive");
        activity?.SetTag("messaging.destination.name", message.Topic);
        activity?.SetTag("zaichik.sequence", message.Sequence);
    }
}
