using System.Diagnostics;
using System.Diagnostics.Metrics;
using Zaichik.Server.Hosting;
using Zaichik.Server.State;

namespace Zaichik.Server.Diagnostics;

/// <summary>
/// The broker's one Meter, <c>Zaichik.Server</c>, and its one ActivitySource of the same name. Counts are observed from
/// the broker state model when a listener (the Prometheus exporter, dotnet-counters) collects, so the message path pays
/// nothing for them but the per-topic counters it keeps anyway; only group flushes are recorded as they happen.
/// </summary>
internal sealed class ServerMetrics : IDisposable
{
    /// <summary>The Meter's and the ActivitySource's name.</summary>
    public const string Name = "Zaichik.Server";

    /// <summary>Spans of publishes and deliveries, parented to the producer's <c>traceparent</c> header when it has one.</summary>
    public static ActivitySource Activities { get; } = new(Name, BrokerCommandLine.Version);

    private readonly Meter _meter;

    public ServerMetrics(IMeterFactory? meters = null)
    {
        _meter = meters?.Create(Name, BrokerCommandLine.Version) ?? new Meter(Name, BrokerCommandLine.Version);
        FlushDuration = _meter.CreateHistogram<double>("zaichik.flush.duration", "s",
            "How long a topic's group flush (log pages, commit record and consumer positions to disk) took",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });
        SnapshotDuration = _meter.CreateHistogram<double>("zaichik.cluster.snapshot.duration", "s",
            "How long a cluster node's snapshot took, by phase: freeze (applying waited while the view's files were set aside), total (until it was complete on disk), install (one the leader sent, put in place of the view)",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });
    }

    public Meter Meter => _meter;

    /// <summary>Group flush durations, in seconds.</summary>
    public Histogram<double> FlushDuration { get; }

    /// <summary>A cluster node's snapshots, in seconds, by phase: <c>freeze</c> (applying waited), <c>total</c> (complete on disk), <c>install</c> (one sent by the leader).</summary>
    public Histogram<double> SnapshotDuration { get; }

    /// <summary>Creates the observed instruments of a cluster node: its role, term, Raft log and snapshots.</summary>
    public void ObserveCluster(Cluster.ClusterNode node)
    {
        _meter.CreateObservableGauge("zaichik.cluster.leader", () => node.IsLeader ? 1 : 0, description:
            "1 while this node leads its Raft group and serves clients, 0 otherwise");
        _meter.CreateObservableGauge("zaichik.cluster.term", () => node.Describe().Term, description: "The Raft term this node is in");
        _meter.CreateObservableCounter("zaichik.cluster.leader_changes", () => node.Describe().LeaderChanges, "{change}",
            "Leaders this node has seen elected since it started");
        _meter.CreateObservableGauge("zaichik.cluster.log.index", () => LogIndices(node.Describe()), "{entry}",
            "This node's Raft log: the last entry it holds, the last one committed by a majority, the last one applied to its topics");
        _meter.CreateObservableCounter("zaichik.cluster.entries.refused", () => node.Describe().RefusedEntries, "{entry}",
            "Raft log entries whose outcome was an error on this node (a refused CreateTopic, a storage failure)");
        _meter.CreateObservableCounter("zaichik.cluster.snapshots", () => SnapshotCounts(node), "{snapshot}",
            "Snapshots taken by this node and installed from a leader since it started");
        _meter.CreateObservableGauge("zaichik.cluster.snapshot.index", () => node.Describe().SnapshotIndex, "{entry}",
            "The Raft log entry the newest snapshot was taken after (0: none)");
        _meter.CreateObservableGauge("zaichik.cluster.snapshot.size", () => node.Describe().SnapshotBytes, "By", "The bytes of the view the newest snapshot holds (its sealed segments are shared with the view and the snapshot before by hard links)");
    }

    /// <summary>Creates the observed instruments over <paramref name="state"/>; called once, when the state model is built.</summary>
    public void Observe(BrokerState state, ServerCounters counters)
    {
        _meter.CreateObservableCounter("zaichik.messages.in", () => state.Totals().MessagesIn, "{message}", "Messages stored");
        _meter.CreateObservableCounter("zaichik.messages.out", () => state.Totals().MessagesOut, "{message}", "Messages delivered to subscribers");
        _meter.CreateObservableCounter("zaichik.bytes.in", () => state.Totals().BytesIn, "By", "Key, header and payload bytes of the messages stored");
        _meter.CreateObservableCounter("zaichik.bytes.out", () => state.Totals().BytesOut, "By", "Bytes of the Message frames delivered");
        _meter.CreateObservableCounter("zaichik.duplicates.dropped", () => state.Totals().Duplicates, "{message}",
            "Keyed publishes dropped as duplicates inside the compaction window");
        _meter.CreateObservableCounter("zaichik.messages.expired", () => state.Totals().Expired, "{message}", "Messages removed because their retention ran out");
        _meter.CreateObservableCounter("zaichik.messages.trimmed", () => state.Totals().Trimmed, "{message}",
            "Messages removed because their topic's MaxMessages or MaxBytes was exceeded");
        _meter.CreateObservableCounter("zaichik.messages.redelivered", () => state.Totals().Redelivered, "{message}",
            "Consumer group deliveries that were not a message's first: after an ack timeout, a Nack or a member leaving");
        _meter.CreateObservableCounter("zaichik.messages.dead_lettered", () => state.Totals().DeadLettered, "{message}",
            "Messages consumer groups gave up on after MaxDeliver deliveries (moved to their dead-letter topic, or dropped)");
        _meter.CreateObservableCounter("zaichik.messages.compacted", () => state.Totals().Compacted, "{message}",
            "Messages removed by log compaction (KeepLatestPerKey): superseded values, values of deleted keys, and tombstones past their retention");
        _meter.CreateObservableCounter("zaichik.publishes", () => Publishes(state, counters), "{publish}",
            "Publishes by result: stored, duplicate (key window), repeat (idempotent producer), or the error code that refused them");
        _meter.CreateObservableUpDownCounter("zaichik.connections", () => state.Sessions.Sessions.Count(), "{connection}", "Client connections");
        _meter.CreateObservableUpDownCounter("zaichik.subscriptions", () => state.Sessions.Sessions.Sum(session => session.SubscriptionCount), "{subscription}",
            "Subscriptions of the client connections");
        _meter.CreateObservableUpDownCounter("zaichik.topics", () => Topics(state), "{topic}", "Topics by state: open, closed (idle) or quarantined");
        _meter.CreateObservableGauge("zaichik.consumer.lag", () => Lags(state), "{message}",
            "Messages stored after a durable consumer's committed sequence or a consumer group's done sequence, for the consumers and groups of open topics");
    }

    public void Dispose() => _meter.Dispose();

    private static IEnumerable<Measurement<long>> Publishes(BrokerState state, ServerCounters counters)
    {
        var totals = state.Totals();
        yield return new Measurement<long>(totals.MessagesIn, new KeyValuePair<string, object?>("result", "stored"));
        yield return new Measurement<long>(totals.Duplicates, new KeyValuePair<string, object?>("result", "duplicate"));
        yield return new Measurement<long>(totals.Repeats, new KeyValuePair<string, object?>("result", "repeat"));
        foreach (var (code, count) in counters.Refused())
        {
            yield return new Measurement<long>(count, new KeyValuePair<string, object?>("result", code.ToString()));
        }
    }

    private static IEnumerable<Measurement<long>> LogIndices(Cluster.ClusterView view)
    {
        yield return new Measurement<long>(view.LastIndex, new KeyValuePair<string, object?>("kind", "last"));
        yield return new Measurement<long>(view.CommitIndex, new KeyValuePair<string, object?>("kind", "committed"));
        yield return new Measurement<long>(view.AppliedIndex, new KeyValuePair<string, object?>("kind", "applied"));
    }

    private static IEnumerable<Measurement<long>> SnapshotCounts(Cluster.ClusterNode node)
    {
        var (taken, installed) = node.State?.SnapshotCounts ?? (0, 0);
        yield return new Measurement<long>(taken, new KeyValuePair<string, object?>("kind", "taken"));
        yield return new Measurement<long>(installed, new KeyValuePair<string, object?>("kind", "installed"));
    }

    private static IEnumerable<Measurement<int>> Topics(BrokerState state)
    {
        var totals = state.Totals();
        yield return new Measurement<int>(totals.Open, new KeyValuePair<string, object?>("state", "open"));
        yield return new Measurement<int>(totals.Topics - totals.Open - totals.Quarantined, new KeyValuePair<string, object?>("state", "closed"));
        yield return new Measurement<int>(totals.Quarantined, new KeyValuePair<string, object?>("state", "quarantined"));
    }

    private static IEnumerable<Measurement<long>> Lags(BrokerState state)
    {
        foreach (var consumer in state.Consumers())
        {
            yield return new Measurement<long>(consumer.Lag,
                new KeyValuePair<string, object?>("topic", consumer.Topic), new KeyValuePair<string, object?>("consumer", consumer.Name));
        }

        foreach (var group in state.Groups())
        {
            yield return new Measurement<long>(group.Lag,
                new KeyValuePair<string, object?>("topic", group.Topic), new KeyValuePair<string, object?>("group", group.Name));
        }
    }
}

/// <summary>The broker's spans: one per publish handled and one per message handed to a subscriber, when someone listens.</summary>
internal static class ServerActivities
{
    /// <summary>A span for handling a publish to <paramref name="topic"/>, child of the producer's <c>traceparent</c> header if any; null when nobody listens.</summary>
    public static Activity? StartPublish(string topic, ReadOnlyMemory<byte> headers)
    {
        if (!ServerMetrics.Activities.HasListeners())
        {
            return null;
        }

        var activity = ServerMetrics.Activities.StartActivity($"{topic} publish", ActivityKind.Server, Parent(headers));
        activity?.SetTag("messaging.system", "zaichik");
        activity?.SetTag("messaging.operation.type", "receive");
        activity?.SetTag("messaging.destination.name", topic);
        return activity;
    }

    /// <summary>A span for handing message <paramref name="sequence"/> of <paramref name="topic"/> to a subscriber; call only when <see cref="ActivitySource.HasListeners"/>.</summary>
    public static void Delivered(string topic, long sequence, string? durableName, ReadOnlySpan<byte> headers)
    {
        using var activity = ServerMetrics.Activities.StartActivity($"{topic} deliver", ActivityKind.Producer, headers.IsEmpty ? default : Parent(headers.ToArray()));
        if (activity is null)
        {
            return;
        }

        activity.SetTag("messaging.system", "zaichik");
        activity.SetTag("messaging.operation.type", "send");
        activity.SetTag("messaging.destination.name", topic);
        activity.SetTag("messaging.message.id", sequence);
        if (durableName is not null)
        {
            activity.SetTag("messaging.consumer.group.name", durableName);
        }
    }

    private static ActivityContext Parent(ReadOnlyMemory<byte> headers)
    {
        if (headers.IsEmpty)
        {
            return default;
        }

        string? traceParent = null, traceState = null;
        foreach (var header in Zaichik.Protocol.HeaderBlock.Enumerate(headers))
        {
            if (header.Key == "traceparent")
            {
                traceParent = System.Text.Encoding.UTF8.GetString(header.Value.Span);
            }
            else if (header.Key == "tracestate")
            {
                traceState = System.Text.Encoding.UTF8.GetString(header.Value.Span);
            }
        }

        return traceParent is not null && ActivityContext.TryParse(traceParent, traceState, out var parent) ? parent : default;
    }
}
