using Zaichik.Protocol;
using Zaichik.Server.Storage;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Hosting;

/// <summary>
/// Every setting of the broker, bound from the <c>Zaichik</c> configuration section (appsettings.json,
/// <c>Zaichik__Name</c> environment variables, <c>--Zaichik:Name</c> arguments) plus the shortcuts
/// <c>PORT</c>, <c>HOST</c>, <c>ZAICHIK_DATA</c> / <c>--data</c>. Validated at start-up.
/// </summary>
public sealed record ZaichikServerOptions
{
    public const string SectionName = "Zaichik";

    /// <summary>The defaults, a new instance each time (options are settable, so none is shared).</summary>
    public static ZaichikServerOptions Default => new();

    /// <summary>Address to listen on. Default 127.0.0.1 (loopback only).</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>TCP port; 0 picks a free one. Default 8889.</summary>
    public int Port { get; set; } = 8889;

    /// <summary>Folder holding every topic's log. Relative paths are from the working directory. Default <c>data</c>.</summary>
    public string DataPath { get; set; } = "data";

    /// <summary>Whether Publish or Subscribe to an unknown topic creates it (no retention, no compaction). Default true.</summary>
    public bool AutoCreateTopics { get; set; } = true;

    /// <summary>Largest frame body accepted, in bytes. Default 1 MiB + 32 KiB.</summary>
    public int MaxFrameSize { get; set; } = ProtocolLimits.DefaultMaxFrameSize;

    /// <summary>Longest topic name, in characters. Default 200.</summary>
    public int MaxTopicNameLength { get; set; } = ProtocolLimits.DefaultMaxTopicNameLength;

    /// <summary>Longest message key, in bytes. Default 1024.</summary>
    public int MaxKeySize { get; set; } = 1024;

    /// <summary>Largest payload, in bytes. A message larger than a log page is stored as several log entries. Default 1 MiB.</summary>
    public int MaxPayloadSize { get; set; } = 1024 * 1024;

    /// <summary>
    /// Largest header block a Publish may carry, in bytes (the whole encoded block). A larger one gets HeadersTooLarge and
    /// is not stored. Default 16 KiB.
    /// </summary>
    public int MaxHeadersSize { get; set; } = 16 * 1024;

    /// <summary>
    /// How long a topic remembers a publish of an idempotent producer (a connection whose Hello carries a producer id),
    /// so that the same producer id and producer sequence sent again is answered with the original's Ack instead of
    /// being stored again. Past it, a repeat is stored as a new message. Default 2 minutes.
    /// </summary>
    public TimeSpan IdempotenceWindow { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Most publishes a topic remembers per idempotent producer: its newest ones. A client resends only what it has no
    /// Ack for, at most its pending requests, so this matches the client's default and <see cref="MaxPublishesInFlight"/>.
    /// Default 10,000.
    /// </summary>
    public int MaxRememberedPublishesPerProducer { get; set; } = 10_000;

    /// <summary>
    /// Most idempotent producers a topic remembers at once; past it the least recently active producer is forgotten
    /// whole (its repeats would be stored again). Default 1,000.
    /// </summary>
    public int MaxProducersPerTopic { get; set; } = 1_000;

    /// <summary>Largest prefetch a subscription may ask for. Default 10,000.</summary>
    public int MaxPrefetch { get; set; } = 10_000;

    /// <summary>
    /// Most connections served at once. The next ones are answered with a TooManyConnections Error and closed; past
    /// twice this many the listener closes new connections without a word. Default 10,000.
    /// </summary>
    public int MaxConnections { get; set; } = 10_000;

    /// <summary>Most subscriptions one connection may hold. Default 1,000.</summary>
    public int MaxSubscriptionsPerConnection { get; set; } = 1_000;

    /// <summary>
    /// Most topics the server holds; auto-create and CreateTopic fail beyond it. A closed topic costs a few hundred bytes
    /// of memory and no descriptor, so the default of 100,000 fits in well under a GiB. Default 100,000.
    /// </summary>
    public int MaxTopics { get; set; } = 100_000;

    /// <summary>
    /// Most topics whose log is open at once: each holds at least two log pages of memory and a few descriptors. Opening
    /// one more first closes the least recently used idle ones; when every open topic is read by someone, the request
    /// gets StorageFailure. Default 4,096.
    /// </summary>
    public int MaxOpenTopics { get; set; } = 4_096;

    /// <summary>
    /// A topic nobody subscribes to and nothing was published to, committed on or subscribed to for this long is closed:
    /// it then holds no file and almost no memory, and reopens on its next use. Default 30 s.
    /// </summary>
    public TimeSpan TopicIdleTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Most publishes one connection may have read by the server but not yet answered (Always-durability publishes
    /// wait for their commit). A publish past it is refused unstored with TooManyPublishesInFlight, which bounds the
    /// memory one connection can pin. Default 10,000, as many as the client library keeps in flight by default.
    /// </summary>
    public int MaxPublishesInFlight { get; set; } = 10_000;

    /// <summary>
    /// A connection from which nothing (not even a Ping) arrives for this long is sent an IdleTimeout Error and closed.
    /// Announced in the server's Hello so that clients ping often enough. Zero disables it. Default 60 s.
    /// </summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a new connection may take to send its Hello before it is closed. Zero disables it. Default 10 s.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Client tokens. When any is configured, every Hello must carry one of them and each connection may only publish
    /// and subscribe where its token's patterns allow. Empty (the default): no authentication.
    /// </summary>
    public IReadOnlyList<ZaichikTokenOptions> Tokens { get; set; } = [];

    /// <summary>
    /// How long a consumer group waits for a member to commit a delivery before delivering it again, when the member's
    /// Subscribe does not say (AckWait 0). Default 30 seconds.
    /// </summary>
    public TimeSpan DefaultAckWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Most messages a consumer group keeps delivered and not done (in flight, or waiting for redelivery after a timeout or
    /// a Nack); past it the group reads no new messages until some are committed. Default 100,000.
    /// </summary>
    public int MaxOutstandingPerGroup { get; set; } = 100_000;

    /// <summary>
    /// The retention of a dead-letter topic a consumer group creates by sending to it (one created beforehand keeps its own
    /// settings): dead letters wait this long for whoever looks at them. Default 7 days.
    /// </summary>
    public TimeSpan DeadLetterRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Durability of topics that do not choose their own: Always, Interval or Memory. Default Interval.</summary>
    public Durability Durability { get; set; } = Durability.Interval;

    /// <summary>For Interval durability: how often appended records are committed to disk. Default 100 ms.</summary>
    public TimeSpan CommitInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>How often expired messages are truncated from disk and stale compaction keys forgotten. Default 1 s.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a tombstone stays on a topic that keeps the latest value per key when its CreateTopic sends 0 for
    /// tombstoneRetentionMs: it is delivered (and keeps its key deleted for readers that saw an older value) for this
    /// long after its timestamp, then removed. Like Kafka's <c>delete.retention.ms</c>. Default 24 hours.
    /// </summary>
    public TimeSpan DefaultTombstoneRetention { get; set; } = TopicSettings.DefaultTombstoneRetention;

    /// <summary>
    /// Least bytes of log a topic that keeps the latest value per key holds beyond its compacted part before the sweep
    /// compacts it (see <see cref="MinCleanableDirtyRatio"/>). Default 1 MiB.
    /// </summary>
    public long MinCompactionBytes { get; set; } = Topics.LogCompactionOptions.Default.MinBytes;

    /// <summary>
    /// Least share of such a topic's stored bytes the log beyond its compacted part must make up before the sweep compacts
    /// it, 0 to under 1 (Kafka's <c>min.cleanable.dirty.ratio</c>): at 0.5 a pass runs once as much arrived as the last
    /// one kept, so rewriting costs at most about twice what is published. Default 0.5.
    /// </summary>
    public double MinCleanableDirtyRatio { get; set; } = Topics.LogCompactionOptions.Default.MinDirtyRatio;

    /// <summary>How long a stop waits for connections to finish before closing them. Default 10 s.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Thread-pool threads started without delay when work queues up. The log's page writes block a pool thread
    /// for the length of a synchronous disk write; with the runtime's default (one per core) a few of them at once
    /// starve everything else until the pool grows, about a second later. Default 64.
    /// </summary>
    public int MinThreadPoolThreads { get; set; } = 64;

    /// <summary>
    /// Handles each connection's frames on the thread that completed its socket read and sends the replies from there
    /// (Kestrel's <c>UnsafePreferInlineScheduling</c>), instead of handing every read to the thread pool and every
    /// write to an I/O queue: a request and its reply cost no thread hop. The broker's own process also sets
    /// <c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c> at startup (unless it is set already), so socket
    /// completions run on the socket engine's threads; an application hosting <see cref="ZaichikServer"/> decides that
    /// variable for its whole process itself. Nothing on a connection's read path blocks a thread for longer than a
    /// page write to the page cache. A read of many frames (a pipelining client) is still handled on the thread pool, so
    /// the socket's thread receives the next ones meanwhile. Default true.
    /// </summary>
    public bool InlineCompletions { get; set; } = true;

    /// <summary>
    /// Most bytes of encoded messages a topic's shared tail holds while its dispatcher hands the previous batch to the
    /// caught-up subscribers. Past it the tail lets go of them, and each reads on from the log with a reader of its own:
    /// a dispatcher that falls behind costs readers, not memory. Default 4 MiB.
    /// </summary>
    public int MaxTailFeedBytes { get; set; } = Subscriptions.TailFeed.DefaultMaxPendingBytes;

    /// <summary>Sizes of each topic's log.</summary>
    public StorageOptions Storage { get; set; } = new();

    /// <summary>TLS on the listener; null (the default) serves plain TCP.</summary>
    public ZaichikServerTlsOptions? Tls { get; set; }

    /// <summary>The admin HTTP listener (API, metrics, health, dashboard); on 127.0.0.1:8890 by default.</summary>
    public AdminOptions Admin { get; set; } = new();

    /// <summary>Listeners beside the client TCP port: <c>Listeners:WebSocket:Url</c> turns on the WebSocket transport.</summary>
    public ListenerOptions Listeners { get; set; } = new();

    /// <summary>Cluster mode (<c>Cluster:NodeId</c>, <c>Cluster:Peers</c>, ...); off by default: a single node.</summary>
    public Cluster.ClusterOptions Cluster { get; set; } = new();

    /// <summary>In cluster mode, the folder of the Raft log and the topics rebuilt from it (under the configured DataPath).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    internal string? ClusterDataPath { get; set; }

    /// <summary>In cluster mode, the snapshots found damaged at start and set aside (each with why), logged once the node starts.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    internal IReadOnlyList<string> DamagedSnapshots { get; set; } = [];

    /// <summary>Every problem with these options; empty when they are valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(Host) || !System.Net.IPAddress.TryParse(Host, out _) && Host != "localhost")
        {
            problems.Add($"Host '{Host}' is not an IP address or 'localhost'");
        }

        Check(Port is >= 0 and <= 65535, $"Port is {Port}; it must be 0..65535");
        Check(!string.IsNullOrWhiteSpace(DataPath), "DataPath is empty");
        Check(MaxFrameSize >= 1024, $"MaxFrameSize is {MaxFrameSize}; it must be at least 1024");
        Check(MaxTopicNameLength is >= 1 and <= 255, $"MaxTopicNameLength is {MaxTopicNameLength}; it must be 1..255 (it is a folder name)");
        Check(MaxKeySize is >= 1 and <= ProtocolLimits.MaxKeyBytes, $"MaxKeySize is {MaxKeySize}; it must be 1..{ProtocolLimits.MaxKeyBytes}");
        Check(MaxPayloadSize >= 1, $"MaxPayloadSize is {MaxPayloadSize}; it must be positive");
        Check(MaxHeadersSize >= 0, $"MaxHeadersSize is {MaxHeadersSize}; it must be 0 (no headers) or positive");
        Check(IdempotenceWindow > TimeSpan.Zero && IdempotenceWindow <= TimeSpan.FromDays(1),
            $"IdempotenceWindow is {IdempotenceWindow}; it must be positive and at most a day (a topic rebuilds it from the log when it opens)");
        Check(MaxRememberedPublishesPerProducer is >= 1 and <= 1_000_000,
            $"MaxRememberedPublishesPerProducer is {MaxRememberedPublishesPerProducer}; it must be 1..1,000,000");
        Check(MaxProducersPerTopic is >= 1 and <= 1_000_000, $"MaxProducersPerTopic is {MaxProducersPerTopic}; it must be 1..1,000,000");
        Check(MaxPrefetch >= 1, $"MaxPrefetch is {MaxPrefetch}; it must be positive");
        Check(DefaultAckWait >= TimeSpan.FromMilliseconds(1) && DefaultAckWait.TotalMilliseconds <= uint.MaxValue,
            $"DefaultAckWait is {DefaultAckWait}; it must be 1 ms to about 49.7 days");
        Check(MaxOutstandingPerGroup >= 1, $"MaxOutstandingPerGroup is {MaxOutstandingPerGroup}; it must be positive");
        Check(DeadLetterRetention >= TimeSpan.FromMilliseconds(1), $"DeadLetterRetention is {DeadLetterRetention}; it must be positive");
        Check(MaxConnections >= 1, $"MaxConnections is {MaxConnections}; it must be positive");
        Check(MaxSubscriptionsPerConnection >= 1, $"MaxSubscriptionsPerConnection is {MaxSubscriptionsPerConnection}; it must be positive");
        Check(MaxTopics >= 1, $"MaxTopics is {MaxTopics}; it must be positive");
        Check(MaxOpenTopics >= 1, $"MaxOpenTopics is {MaxOpenTopics}; it must be positive");
        Check(TopicIdleTimeout >= TimeSpan.Zero, $"TopicIdleTimeout is {TopicIdleTimeout}; it must not be negative");
        Check(MaxPublishesInFlight >= 1, $"MaxPublishesInFlight is {MaxPublishesInFlight}; it must be positive");
        Check(IdleTimeout >= TimeSpan.Zero && IdleTimeout.TotalMilliseconds <= uint.MaxValue, $"IdleTimeout is {IdleTimeout}; it must be zero (off) or positive");
        Check(HandshakeTimeout >= TimeSpan.Zero, $"HandshakeTimeout is {HandshakeTimeout}; it must be zero (off) or positive");
        problems.AddRange(Security.TokenAuthenticator.Validate(Tokens ?? []));
        Check(Durability is Durability.Always or Durability.Interval or Durability.Memory, $"Durability is {Durability}; it must be Always, Interval or Memory");
        Check(CommitInterval > TimeSpan.Zero && CommitInterval.TotalMilliseconds <= TopicSettings.MaxCommitIntervalMs,
            $"CommitInterval is {CommitInterval}; it must be positive and at most {TopicSettings.MaxCommitIntervalMs} ms (the longest a timer waits)");
        Check(SweepInterval > TimeSpan.Zero, $"SweepInterval is {SweepInterval}; it must be positive");
        Check(DefaultTombstoneRetention >= TimeSpan.FromMilliseconds(1), $"DefaultTombstoneRetention is {DefaultTombstoneRetention}; it must be at least 1 ms");
        Check(MinCompactionBytes >= 0, $"MinCompactionBytes is {MinCompactionBytes}; it must be 0 or positive");
        Check(MinCleanableDirtyRatio is >= 0 and < 1, $"MinCleanableDirtyRatio is {MinCleanableDirtyRatio}; it must be at least 0 and below 1");
        Check(MaxTailFeedBytes >= 0, $"MaxTailFeedBytes is {MaxTailFeedBytes}; it must not be negative (0 turns the shared tail off)");
        Check(MinThreadPoolThreads is >= 1 and <= 32_767, $"MinThreadPoolThreads is {MinThreadPoolThreads}; it must be 1..32767");
        Check(ShutdownTimeout >= TimeSpan.Zero, $"ShutdownTimeout is {ShutdownTimeout}; it must not be negative");
        problems.AddRange(Storage.Validate());
        problems.AddRange(Tls?.Validate() ?? []);
        Check(Admin is not null, "Admin is missing; leave it out for the default, or set Admin:Url to off");
        problems.AddRange(Admin?.Validate(Tls is not null) ?? []);
        problems.AddRange(Listeners?.WebSocket?.Validate(Tls is not null) ?? []);
        Check(Cluster is not null, "Cluster is missing; leave it out for a single node");
        problems.AddRange(Cluster?.Validate() ?? []);
        Check(Cluster is not { Enabled: true } || Cluster.Advertise is { Length: > 0 } || (Host != "0.0.0.0" && Host != "::"),
            $"Host is {Host}, which clients cannot be redirected to; set Cluster:Advertise to the host:port clients reach this node at");

        // A message larger than a log page is split (headers and payload alike), but its key must fit in the first
        // fragment with room to spare.
        Check(LogRecord.MaxHeaderSize + LogRecord.FirstFragmentExtra + MaxKeySize + 1024 <= Storage.MaxRecordSize,
            $"MaxKeySize ({MaxKeySize}) leaves too little room in a log page of {1 << Storage.PageSizeBits} bytes; raise Storage:PageSizeBits or lower it");
        Check((long)LogRecord.MaxHeaderSize + MaxKeySize + MaxHeadersSize + MaxPayloadSize + (MaxTopicNameLength * 4) + 64 <= MaxFrameSize,
            $"MaxFrameSize ({MaxFrameSize}) is smaller than the largest Publish frame MaxKeySize, MaxHeadersSize, MaxPayloadSize and MaxTopicNameLength allow");
        return problems;

        void Check(bool condition, string problem)
        {
            if (!condition)
            {
                problems.Add(problem);
            }
        }
    }
}
