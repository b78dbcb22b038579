namespace Zaichik.Server.State;

// The broker state model's read-only views: what the admin API answers (as JSON, camelCase), the dashboard shows and
// the CLI prints. docs/admin-api.md describes every field.

/// <summary>The server as a whole.</summary>
public sealed record ServerView(
    string Version,
    DateTimeOffset StartedAt,
    long UptimeMs,
    IReadOnlyList<ListenerView> Listeners,
    string DataPath,
    string Durability,
    bool Auth,
    bool AutoCreateTopics,
    TopicCountsView Topics,
    int Connections,
    int Subscriptions,
    long MessagesIn,
    long BytesIn,
    long MessagesOut,
    long BytesOut,
    long DuplicatesDropped,
    long Expired,
    int OpenFiles,
    int MaxOpenFiles,
    System.Text.Json.Nodes.JsonObject Options);

/// <summary>One listener: <c>tcp</c> (clients) or <c>admin</c> (HTTP).</summary>
public sealed record ListenerView(string Kind, string Address, bool Tls);

/// <summary>How many topics there are, and in which state.</summary>
public sealed record TopicCountsView(int Total, int Open, int Quarantined);

/// <summary>One topic: its settings, what it stores and what it has done since the broker started.</summary>
public record TopicView(
    string Name,
    string State,
    string? QuarantineReason,
    long RetentionTtlMs,
    long CompactionWindowMs,
    string Durability,
    long CommitIntervalMs,
    long MaxMessages,
    long MaxBytes,
    bool KeepLatestPerKey,
    long TombstoneRetentionMs,
    long? FirstSequence,
    long? LastSequence,
    long? MessageCount,
    long? Keys,
    long BytesOnDisk,
    int Subscribers,
    int ConsumerCount,
    long? MaxLag,
    long MessagesIn,
    long BytesIn,
    long MessagesOut,
    long BytesOut,
    long DuplicatesDropped,
    long Expired,
    long Trimmed,
    long Compacted,
    int Holes,
    int OpenFiles,
    int Readers,
    int TailSubscribers);

/// <summary>One topic with its durable consumers and the sequence ranges lost to damaged storage.</summary>
public sealed record TopicDetailView(TopicView Topic, IReadOnlyList<ConsumerView> Consumers, IReadOnlyList<HoleView> HoleRanges)
{
    /// <summary>The topic's consumer groups (live ones and those stored while no member is connected).</summary>
    public IReadOnlyList<GroupView> Groups { get; init; } = [];
}

/// <summary>
/// One consumer group of a topic: its members now, the sequence up to which every message is done, the messages delivered and
/// not done (in flight or waiting for redelivery), its lag (messages after the done sequence), its settings, and since the
/// broker started its redeliveries and dead letters (counted while it has members).
/// </summary>
public sealed record GroupView(
    string Topic, string Name, int Members, long DoneSequence, int Pending, long Lag, uint AckWaitMs, uint MaxDeliver, string? DeadLetterTopic,
    long Redelivered, long DeadLettered, bool Lost);

/// <summary>A range of sequences lost to damaged storage.</summary>
public sealed record HoleView(long First, long Last);

/// <summary>One durable consumer of a topic.</summary>
public sealed record ConsumerView(string Topic, string Name, long CommittedSequence, long Lag, bool Connected, bool Lost);

/// <summary>One client connection.</summary>
public sealed record ConnectionView(
    string Id,
    string? RemoteAddress,
    string? Token,
    bool Tls,
    DateTimeOffset ConnectedAt,
    bool Authenticated,
    ulong ProducerId,
    long MessagesIn,
    long BytesIn,
    long MessagesOut,
    long BytesOut,
    int PublishesInFlight,
    IReadOnlyList<SubscriptionView> Subscriptions);

/// <summary>One subscription of a connection.</summary>
public sealed record SubscriptionView(string Topic, string? DurableName, string AckPolicy, int Prefetch, int InFlight, long StartSequence, long MessagesOut)
{
    /// <summary>The consumer group this subscription is a member of, or null.</summary>
    public string? Group { get; init; }
}

/// <summary>A page of stored messages, read without moving any consumer.</summary>
public sealed record PeekView(string Topic, long FirstSequence, long LastSequence, IReadOnlyList<PeekedMessage> Messages, long? Next);

/// <summary>One stored message. Key, header values and payload are text or base64, as their encoding says.</summary>
public sealed record PeekedMessage(
    long Sequence,
    DateTimeOffset Timestamp,
    string? Key,
    string? KeyEncoding,
    IReadOnlyList<PeekedHeader> Headers,
    string Payload,
    string PayloadEncoding,
    int Size);

/// <summary>One header of a peeked message.</summary>
public sealed record PeekedHeader(string Key, string Value, string Encoding);
