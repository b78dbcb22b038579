using System.Text;
using Microsoft.Extensions.Options;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;
using Zaichik.Server.Sessions.Internal;
using Zaichik.Server.Topics;

namespace Zaichik.Server.State;

/// <summary>
/// The broker state model: one read-only view of the server, its topics, their durable consumers and the client
/// connections, read on demand from the registry and the sessions (nothing is copied on the message path). The admin
/// API, the dashboard, the CLI (through the API), the <c>Zaichik.Server</c> Meter and the tests all read it.
/// </summary>
internal sealed class BrokerState(
    TopicRegistry registry,
    IdleConnectionMonitor sessions,
    IOptions<ZaichikServerOptions> options,
    TimeProvider time,
    ListenerAddresses listeners,
    Storage.FileBudget files)
{
    private readonly ZaichikServerOptions _options = options.Value;

    /// <summary>When this broker started (its state model was built with it).</summary>
    public DateTimeOffset StartedAt { get; } = time.GetUtcNow();

    internal TopicRegistry Registry => registry;

    /// <summary>The server: version, uptime, listeners, totals and options (without secrets).</summary>
    public ServerView Server()
    {
        var totals = Totals();
        var connections = 0;
        var subscriptions = 0;
        foreach (var session in sessions.Sessions)
        {
            connections++;
            subscriptions += session.SubscriptionCount;
        }

        return new ServerView(
            BrokerCommandLine.Version,
            StartedAt,
            (long)(time.GetUtcNow() - StartedAt).TotalMilliseconds,
            listeners.All,
            Path.GetFullPath(_options.DataPath),
            _options.Durability.ToString(),
            _options.Tokens.Count > 0,
            _options.AutoCreateTopics,
            new TopicCountsView(totals.Topics, totals.Open, totals.Quarantined),
            connections,
            subscriptions,
            totals.MessagesIn,
            totals.BytesIn,
            totals.MessagesOut,
            totals.BytesOut,
            totals.Duplicates,
            totals.Expired,
            files.InUse,
            files.Limit,
            PublicOptions());
    }

    /// <summary>Topics in name order: those starting with <paramref name="prefix"/>, after <paramref name="after"/>, at most <paramref name="limit"/>.</summary>
    public IReadOnlyList<TopicView> Topics(string? prefix, string? after, int limit)
    {
        // Binary search to the first name past both 'after' and the start of 'prefix', then read names in order.
        var names = registry.SortedNames;
        var from = prefix is not null && (after is null || string.CompareOrdinal(prefix, after) > 0) ? prefix : after;
        var index = 0;
        if (from is not null)
        {
            index = Array.BinarySearch(names, from, StringComparer.Ordinal);
            index = index >= 0 ? (ReferenceEquals(from, after) || from == after ? index + 1 : index) : ~index;
        }

        var views = new List<TopicView>(Math.Min(limit, names.Length - index));
        for (; index < names.Length && views.Count < limit; index++)
        {
            var name = names[index];
            if (prefix is not null && !name.StartsWith(prefix, StringComparison.Ordinal))
            {
                break;
            }

            if (after is not null && string.CompareOrdinal(name, after) <= 0)
            {
                continue;
            }

            if (registry.TryGet(name, out var topic))
            {
                views.Add(Describe(topic));
            }
        }

        return views;
    }

    /// <summary>
    /// One topic with its consumers, or null when there is no such topic. A closed topic is opened, as any use opens it
    /// (its consumers' positions live in its folder); a quarantined one is described without them.
    /// </summary>
    public async ValueTask<TopicDetailView?> TopicAsync(string name, CancellationToken cancellationToken)
    {
        if (!registry.TryGet(name, out var topic))
        {
            return null;
        }

        if (topic.State == TopicState.Closed)
        {
            try
            {
                await topic.OpenAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (TopicException)
            {
                // Quarantined, or no room to open it: described as it is.
            }
        }

        var holes = topic.Current is { } open
            ? open.Log.Holes.Select(hole => new HoleView(hole.FirstSequence, hole.LastSequence)).ToArray()
            : [];
        return new TopicDetailView(Describe(topic), ConsumersOf(topic), holes) { Groups = GroupsOf(topic) };
    }

    /// <summary>Durable consumers of every open topic (a closed topic's are read by <see cref="TopicAsync"/>).</summary>
    public IReadOnlyList<ConsumerView> Consumers()
    {
        var consumers = new List<ConsumerView>();
        foreach (var topic in registry.Topics)
        {
            consumers.AddRange(ConsumersOf(topic));
        }

        consumers.Sort((a, b) => string.CompareOrdinal(a.Topic, b.Topic) is var byTopic and not 0 ? byTopic : string.CompareOrdinal(a.Name, b.Name));
        return consumers;
    }

    /// <summary>The consumer groups of every open topic, or of <paramref name="topic"/> only.</summary>
    public IReadOnlyList<GroupView> Groups(string? topic = null) =>
        topic is not null
            ? registry.TryGet(topic, out var one) ? GroupsOf(one) : []
            : [.. registry.Topics.SelectMany(GroupsOf).OrderBy(group => group.Topic, StringComparer.Ordinal).ThenBy(group => group.Name, StringComparer.Ordinal)];

    /// <summary>The consumer groups of an open topic: live ones as they are, stored ones as they were left; none of a closed topic.</summary>
    public static IReadOnlyList<GroupView> GroupsOf(Topic topic)
    {
        if (topic.Current is not { } open)
        {
            return [];
        }

        var log = open.Log;
        var views = new List<GroupView>();
        // A private group is a subscription's own redelivery: the connection's view shows it, not this one.
        var live = open.Groups.Values.Where(group => !Subscriptions.ConsumerGroup.IsPrivate(group.Name)).ToArray();
        foreach (var group in live)
        {
            var done = group.DoneUpTo;
            var settings = group.Settings;
            views.Add(new GroupView(topic.Name, group.Name, group.MemberCount, done, group.Outstanding, log.CountAfter(done), settings.AckWaitMs,
                settings.MaxDeliver, settings.DeadLetterTopic, group.Redelivered, group.DeadLettered, false));
        }

        var stored = open.Positions.Groups;
        foreach (var name in stored.Names)
        {
            if (live.Any(group => group.Name == name))
            {
                continue;
            }

            if (stored.Get(name, out var state, out _) == Storage.PositionState.Committed && state is not null)
            {
                var done = state.FirstNeeded - 1;
                views.Add(new GroupView(topic.Name, name, 0, done, state.Outstanding.Count, log.CountAfter(done), state.AckWaitMs, state.MaxDeliver,
                    state.DeadLetterTopic, 0, 0, false));
            }
            else
            {
                views.Add(new GroupView(topic.Name, name, 0, 0, 0, log.CountAfter(log.FirstSequence - 1), 0, 0, null, 0, 0, true));
            }
        }

        views.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return views;
    }

    /// <summary>The client connections, oldest first.</summary>
    public IReadOnlyList<ConnectionView> Connections() =>
        sessions.Sessions.Select(session => session.Describe()).OrderBy(connection => connection.ConnectedAt).ThenBy(connection => connection.Id, StringComparer.Ordinal).ToArray();

    /// <summary>
    /// Up to <paramref name="limit"/> stored, unexpired messages of <paramref name="name"/> from sequence
    /// <paramref name="from"/> (the first stored when null), without moving any consumer; null when there is no such topic.
    /// </summary>
    /// <param name="encoding"><c>auto</c> (text when valid UTF-8), <c>text</c> or <c>base64</c>.</param>
    /// <exception cref="TopicException">The topic cannot be opened (quarantined, or no room).</exception>
    public async ValueTask<PeekView?> PeekAsync(string name, long? from, int limit, string encoding, CancellationToken cancellationToken)
    {
        if (!registry.TryGet(name, out var topic))
        {
            return null;
        }

        await topic.OpenAsync(cancellationToken).ConfigureAwait(false);
        var open = topic.Current ?? throw new TopicException(ErrorCode.StorageFailure, $"topic '{name}' closed while it was read; try again");

        // Counted as a pump while it reads, so that the topic is not closed under the reader.
        open.PumpStarted();
        try
        {
            var log = open.Log;
            var start = Math.Max(from ?? log.FirstSequence, log.FirstSequence);
            var messages = new List<PeekedMessage>();
            long? next = null;
            using (var reader = await log.OpenReaderAtSequenceAsync(start, cancellationToken).ConfigureAwait(false))
            {
                var nowMs = topic.NowMs;
                while (reader.TryRead(out var message))
                {
                    try
                    {
                        if (message.Sequence < start || topic.IsExpired(message.TimestampMs, nowMs))
                        {
                            continue;
                        }

                        if (messages.Count == limit)
                        {
                            next = message.Sequence;
                            break;
                        }

                        messages.Add(Peeked(message, encoding));
                    }
                    finally
                    {
                        reader.Release();
                    }
                }
            }

            return new PeekView(topic.Name, log.FirstSequence, log.LastSequence, messages, next);
        }
        catch (ObjectDisposedException)
        {
            throw new TopicException(ErrorCode.StorageFailure, $"topic '{name}' closed while it was read; try again");
        }
        finally
        {
            open.PumpEnded();
        }
    }

    /// <summary>Server-wide sums over every topic, for the Meter and <see cref="Server"/>.</summary>
    public BrokerTotals Totals()
    {
        var totals = new BrokerTotals();
        foreach (var topic in registry.Topics)
        {
            totals.Topics++;
            switch (topic.State)
            {
                case TopicState.Open:
                    totals.Open++;
                    break;
                case TopicState.Quarantined:
                    totals.Quarantined++;
                    break;
            }

            var counters = topic.Counters;
            totals.MessagesIn += counters.MessagesIn;
            totals.BytesIn += counters.BytesIn;
            totals.MessagesOut += counters.MessagesOut;
            totals.BytesOut += counters.BytesOut;
            totals.Duplicates += counters.Duplicates;
            totals.Repeats += counters.Repeats;
            totals.Expired += counters.Expired;
            totals.Trimmed += counters.Trimmed;
            totals.Redelivered += counters.Redelivered;
            totals.DeadLettered += counters.DeadLettered;
            totals.Compacted += counters.Compacted;
        }

        return totals;
    }

    /// <summary>The sessions, for the Meter's connection and subscription counts.</summary>
    internal IdleConnectionMonitor Sessions => sessions;

    /// <summary>Describes <paramref name="topic"/> as it is now, without opening it.</summary>
    public static TopicView Describe(Topic topic)
    {
        var settings = topic.Settings;
        var open = topic.Current;
        long? first = null, last = null, count = null, maxLag = null;
        int subscribers = 0, consumers = 0, holes = 0, openFiles = 0, readers = 0;
        if (open is not null)
        {
            var log = open.Log;
            first = log.FirstSequence;
            last = log.LastSequence;
            count = log.CountAfter(log.FirstSequence - 1);
            subscribers = open.SubscriberCount;
            holes = log.Holes.Count;
            openFiles = log.OpenFiles + open.Positions.OpenFiles;
            readers = log.Readers;
            foreach (var (_, committed, lost) in open.Positions.All())
            {
                consumers++;
                var lag = lost ? log.CountAfter(log.FirstSequence - 1) : log.CountAfter(committed);
                maxLag = Math.Max(maxLag ?? 0, lag);
            }
        }
        else if (topic.ClosedSequences is { } closed)
        {
            (first, last, count) = closed;
        }

        var counters = topic.Counters;
        return new TopicView(
            topic.Name,
            topic.State.ToString().ToLowerInvariant(),
            topic.QuarantineReason,
            settings.RetentionTtlMs,
            settings.CompactionWindowMs,
            settings.Durability.ToString(),
            settings.CommitIntervalMs,
            settings.MaxMessages,
            settings.MaxBytes,
            settings.KeepLatestPerKey,
            settings.TombstoneRetentionMs,
            first,
            last,
            count,
            open?.Latest?.Count,
            BytesOnDisk(topic.Directory),
            subscribers,
            consumers,
            maxLag,
            counters.MessagesIn,
            counters.BytesIn,
            counters.MessagesOut,
            counters.BytesOut,
            counters.Duplicates,
            counters.Expired,
            counters.Trimmed,
            counters.Compacted,
            holes,
            openFiles,
            readers,
            open?.Feed?.Attached ?? 0);
    }

    /// <summary>The durable consumers of an open topic; none of a closed one.</summary>
    public static IReadOnlyList<ConsumerView> ConsumersOf(Topic topic)
    {
        if (topic.Current is not { } open)
        {
            return [];
        }

        var log = open.Log;
        return open.Positions.All()
            .OrderBy(consumer => consumer.Name, StringComparer.Ordinal)
            .Select(consumer => new ConsumerView(
                topic.Name,
                consumer.Name,
                consumer.Sequence,
                consumer.Lost ? log.CountAfter(log.FirstSequence - 1) : log.CountAfter(consumer.Sequence),
                open.IsConsumerConnected(consumer.Name),
                consumer.Lost))
            .ToArray();
    }

    private static long BytesOnDisk(string directory)
    {
        try
        {
            if (!Directory.Exists(directory))
            {
                return 0;
            }

            long bytes = 0;
            foreach (var file in new DirectoryInfo(directory).EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
            {
                bytes += file.Length;
            }

            return bytes;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    private static PeekedMessage Peeked(in Storage.LogMessage message, string encoding)
    {
        var (payload, payloadEncoding) = Encode(message.Payload, encoding);
        string? key = null, keyEncoding = null;
        if (message.HasKey)
        {
            (key, keyEncoding) = Encode(message.Key, encoding);
        }

        var headers = new List<PeekedHeader>();
        if (!message.Headers.IsEmpty)
        {
            foreach (var header in HeaderBlock.Enumerate(message.Headers.ToArray()))
            {
                var (value, valueEncoding) = header.IsText && encoding != "base64"
                    ? (Encoding.UTF8.GetString(header.Value.Span), "text")
                    : Encode(header.Value.Span, encoding);
                headers.Add(new PeekedHeader(header.Key, value, valueEncoding));
            }
        }

        return new PeekedMessage(
            message.Sequence,
            DateTimeOffset.FromUnixTimeMilliseconds(message.TimestampMs),
            key,
            keyEncoding,
            headers,
            payload,
            payloadEncoding,
            message.Payload.Length);
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static (string Text, string Encoding) Encode(ReadOnlySpan<byte> bytes, string encoding)
    {
        if (encoding != "base64")
        {
            try
            {
                return (StrictUtf8.GetString(bytes), "text");
            }
            catch (DecoderFallbackException) when (encoding == "auto")
            {
            }
            catch (DecoderFallbackException)
            {
                return (Encoding.UTF8.GetString(bytes), "text");
            }
        }

        return (Convert.ToBase64String(bytes), "base64");
    }

    /// <summary>
    /// Every setting, named as in configuration (Zaichik:MaxFrameSize, Zaichik:Storage:PageSizeBits) so that what is
    /// shown can be set; secrets left out (token values and certificate passwords are <c>JsonIgnore</c>).
    /// </summary>
    private System.Text.Json.Nodes.JsonObject PublicOptions() =>
        (System.Text.Json.Nodes.JsonObject)System.Text.Json.JsonSerializer.SerializeToNode(_options, Admin.ConfigurationJsonContext.Default.ZaichikServerOptions)!;
}

/// <summary>Server-wide sums over every topic.</summary>
internal sealed class BrokerTotals
{
    public int Topics;
    public int Open;
    public int Quarantined;
    public long MessagesIn;
    public long BytesIn;
    public long MessagesOut;
    public long BytesOut;
    public long Duplicates;
    public long Repeats;
    public long Expired;
    public long Trimmed;
    public long Redelivered;
    public long DeadLettered;
    public long Compacted;
}

/// <summary>The addresses the broker's listeners bound, filled in once they are bound.</summary>
internal sealed class ListenerAddresses
{
    private volatile ListenerView[] _all = [];

    public IReadOnlyList<ListenerView> All => _all;

    public void Set(IEnumerable<ListenerView> listeners) => _all = listeners.ToArray();
}
