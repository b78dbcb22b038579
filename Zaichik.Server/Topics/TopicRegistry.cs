using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;
using Zaichik.Server.Storage;

namespace Zaichik.Server.Topics;

/// <summary>
/// Every topic of the broker, by name. The list and the settings live in the <see cref="TopicCatalog"/>; each topic's
/// log under <c>&lt;data&gt;/topics/&lt;name&gt;/</c>. On start only the catalog is read: every topic starts closed and
/// opens on first use, and closes again once idle (<see cref="ZaichikServerOptions.TopicIdleTimeout"/>), so the number
/// of topics costs little memory and no descriptors. Topics are created on demand and never deleted.
/// </summary>
internal sealed partial class TopicRegistry : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Topic> _topics = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Task> _creating = new(StringComparer.Ordinal);
    private readonly ZaichikServerOptions _options;
    private readonly ILogger<TopicRegistry> _logger;
    private readonly TopicContext _context;
    private readonly string _topicsRoot;
    private readonly SemaphoreSlim _makingRoom = new(1, 1);
    private TopicCatalog? _catalog;
    private volatile string[]? _sortedNames;
    private int _disposed;

    public TopicRegistry(IOptions<ZaichikServerOptions> options, TimeProvider time, ILogger<TopicRegistry> logger, ILoggerFactory loggers, FileBudget files,
        Diagnostics.ServerMetrics? metrics = null)
    {
        _options = options.Value;
        _logger = logger;
        _topicsRoot = Path.Combine(Path.GetFullPath(_options.DataPath), "topics");
        var limiter = new OpenTopicLimiter(_options.MaxOpenTopics);
        _context = new TopicContext(_options.Storage, files, limiter, time, loggers,
            new ProducerWindowOptions(_options.IdempotenceWindow, _options.MaxRememberedPublishesPerProducer, _options.MaxProducersPerTopic))
        {
            FlushDuration = metrics?.FlushDuration,
            Compaction = new LogCompactionOptions(_options.MinCompactionBytes, _options.MinCleanableDirtyRatio),
            MaxTailFeedBytes = _options.MaxTailFeedBytes,
            ReplicatedView = _options.ClusterDataPath is not null,
        };
        limiter.MakeRoom = MakeRoomAsync;
    }

    public int Count => _topics.Count;

    /// <summary>
    /// Every topic, enumerated without a copy: <c>ConcurrentDictionary.Values</c> takes every lock and copies every entry
    /// into a new list, which with 100,000 topics is a large-object allocation per call (per sweep, per admin request).
    /// </summary>
    public IEnumerable<Topic> Topics
    {
        get
        {
            foreach (var pair in _topics)
            {
                yield return pair.Value;
            }
        }
    }

    /// <summary>
    /// Every topic's name in ordinal order, for listing a page without sorting every name on every request. Sorted on
    /// the first call after a topic was added, then shared (topics are never removed).
    /// </summary>
    public string[] SortedNames
    {
        get
        {
            var names = _sortedNames;
            if (names is null || names.Length != _topics.Count)
            {
                names = [.. _topics.Keys];
                Array.Sort(names, StringComparer.Ordinal);
                _sortedNames = names;
            }

            return names;
        }
    }

    /// <summary>Topics whose log is open now.</summary>
    public int OpenCount => _context.OpenTopics.Open;

    internal TopicContext Context => _context;

    /// <summary>Reads the catalog (rebuilding it from the topic folders when it is missing or damaged). Opens no topic.</summary>
    public ValueTask OpenExistingAsync(CancellationToken cancellationToken)
    {
        if (!Directory.Exists(_topicsRoot))
        {
            // A new data folder: the name of the folder every topic lives in must survive a power cut too.
            Directory.CreateDirectory(_topicsRoot);
            Storage.Internal.DirectorySync.Flush(Path.GetDirectoryName(_topicsRoot)!);
        }

        _catalog = TopicCatalog.Open(Path.GetFullPath(_options.DataPath), FromFolders, out var entries, out var recovered);
        if (recovered is not null)
        {
            LogCatalogRecovered(recovered);
        }

        foreach (var entry in entries)
        {
            var settings = new TopicSettings(entry.RetentionTtlMs, entry.CompactionWindowMs, (Durability)entry.Durability, entry.CommitIntervalMs,
                entry.MaxMessages, entry.MaxBytes, entry.KeepLatestPerKey, entry.TombstoneRetentionMs);
            _topics[entry.Name] = NewTopic(entry.Name, Resolve(settings));
        }

        LogOpened(_topics.Count, _topicsRoot);
        return ValueTask.CompletedTask;
    }

    public bool TryGet(string name, out Topic topic) => _topics.TryGetValue(name, out topic!);

    /// <summary>The topic for a Publish or Subscribe: created with default settings if auto-create is on.</summary>
    public ValueTask<Topic> GetForUseAsync(string name, CancellationToken cancellationToken)
    {
        if (_topics.TryGetValue(name, out var topic) && !_creating.ContainsKey(name))
        {
            return ValueTask.FromResult(topic);
        }

        ValidateName(name);
        if (!_options.AutoCreateTopics && !_topics.ContainsKey(name))
        {
            throw new TopicException(ErrorCode.TopicNotFound, $"topic '{name}' does not exist and this server does not create topics automatically; create it with CreateTopic");
        }

        return GetOrCreateAsync(name, TopicSettings.Default, explicitCreate: false, cancellationToken);
    }

    /// <summary>
    /// A consumer group's dead-letter topic: the existing one, whatever its settings, or (with auto-create on) a new one that
    /// retains what it is sent for <paramref name="retention"/>, so dead letters wait for whoever looks at them later.
    /// </summary>
    public ValueTask<Topic> GetForDeadLettersAsync(string name, TimeSpan retention, CancellationToken cancellationToken)
    {
        if (_topics.TryGetValue(name, out var topic) && !_creating.ContainsKey(name))
        {
            return ValueTask.FromResult(topic);
        }

        ValidateName(name);
        if (!_options.AutoCreateTopics && !_topics.ContainsKey(name))
        {
            throw new TopicException(ErrorCode.TopicNotFound, $"dead-letter topic '{name}' does not exist and this server does not create topics automatically; create it with CreateTopic");
        }

        return GetOrCreateAsync(name, TopicSettings.Default with { RetentionTtlMs = (long)retention.TotalMilliseconds }, explicitCreate: false, cancellationToken);
    }

    /// <summary>CreateTopic: creates the topic, or confirms an existing one with identical settings.</summary>
    public async ValueTask<Topic> CreateAsync(string name, TopicSettings settings, CancellationToken cancellationToken)
    {
        ValidateName(name);
        if (settings.RetentionTtlMs < 0 || settings.CompactionWindowMs < 0 || settings.CommitIntervalMs < 0 || settings.MaxMessages < 0 || settings.MaxBytes < 0
            || settings.TombstoneRetentionMs < 0)
        {
            throw new TopicException(ErrorCode.InvalidArgument,
                $"retentionTtlMs, compactionWindowMs, commitIntervalMs, maxMessages, maxBytes and tombstoneRetentionMs must be 0 or positive; got {settings}");
        }

        if (settings.TombstoneRetentionMs != 0 && !settings.KeepLatestPerKey)
        {
            throw new TopicException(ErrorCode.InvalidArgument,
                $"tombstoneRetentionMs {settings.TombstoneRetentionMs} is only for a topic that keeps the latest value per key (keepLatestPerKey); send 0 otherwise");
        }

        // A longer one would fail in the committer's timer after the topic was created.
        if (settings.CommitIntervalMs > TopicSettings.MaxCommitIntervalMs)
        {
            throw new TopicException(ErrorCode.InvalidArgument, $"commitIntervalMs {settings.CommitIntervalMs} exceeds the longest a timer can wait, {TopicSettings.MaxCommitIntervalMs} ms");
        }

        if (!Enum.IsDefined(settings.Durability))
        {
            throw new TopicException(ErrorCode.InvalidArgument, $"durability {(byte)settings.Durability} is not defined");
        }

        return await GetOrCreateAsync(name, settings, explicitCreate: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// For a cluster snapshot: runs <paramref name="copy"/> on each topic's folder in turn while nothing changes that
    /// topic's files (see <see cref="Topic.CopyFilesAsync"/>).
    /// </summary>
    public async ValueTask CopyTopicFilesAsync(Func<Topic, ValueTask> copy, CancellationToken cancellationToken)
    {
        foreach (var topic in Topics)
        {
            await topic.CopyFilesAsync(() => copy(topic), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// For a cluster node installing a snapshot: closes and forgets every topic (subscriptions to them end), lets
    /// <paramref name="replace"/> replace the files of the data folder, and reads the catalog it finds there.
    /// </summary>
    public async ValueTask ReplaceAllAsync(Func<ValueTask> replace, CancellationToken cancellationToken)
    {
        await _makingRoom.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var old = _topics.Values.ToArray();
            _topics.Clear();
            _sortedNames = null;
            foreach (var topic in old)
            {
                try
                {
                    await topic.RetireAsync("its files were replaced by a cluster snapshot").ConfigureAwait(false);
                }
                catch (Exception exception)
                {
                    LogCloseFailed(exception, topic.Name);
                }
            }

            _catalog?.Dispose();
            _catalog = null;
            await replace().ConfigureAwait(false);
            await OpenExistingAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _makingRoom.Release();
        }
    }

    /// <summary>Closes every topic (committing its log), each within the shutdown timeout.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        var open = _topics.Values.Where(topic => topic.Current is not null).ToArray();
        var closing = open.Select(async topic =>
        {
            try
            {
                await topic.DisposeAsync().AsTask().WaitAsync(_options.ShutdownTimeout).ConfigureAwait(false);
            }
            catch (Exception exception)
            {
                LogCloseFailed(exception, topic.Name);
            }
        });
        await Task.WhenAll(closing).ConfigureAwait(false);
        _catalog?.Dispose();
        LogClosed(open.Length, _topics.Count);
    }

    /// <summary>
    /// Closes idle topics to make room for one more open topic, under <see cref="ZaichikServerOptions.MaxOpenTopics"/>
    /// or within the descriptor budget: the least recently used ones nobody reads, a tenth of the open ones at a time so
    /// that opening many topics does not close one per open. A topic busy at that instant (a publish or a sweep holds
    /// it) is passed over for the next least recently used. Returns how many it closed.
    /// </summary>
    public async ValueTask<int> MakeRoomAsync(CancellationToken cancellationToken)
    {
        await _makingRoom.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var limiter = _context.OpenTopics;
            var batch = Math.Max(1, Math.Min(limiter.Open, limiter.Limit) / 10);
            var candidates = _topics.Values
                .Where(topic => topic.Current is { InUse: false })
                .OrderBy(topic => topic.LastUsedMs)
                .ToArray();
            var closed = 0;
            foreach (var chunk in candidates.Chunk(batch))
            {
                var done = await Task.WhenAll(chunk.Select(CloseForRoomAsync)).ConfigureAwait(false);
                closed += done.Count(closedOne => closedOne);
                if (closed >= batch)
                {
                    break;
                }
            }

            return closed;

            async Task<bool> CloseForRoomAsync(Topic topic)
            {
                try
                {
                    return await topic.TryCloseAsync(TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception exception) when (exception is not OperationCanceledException)
                {
                    // That topic's trouble (logged) is not the trouble of the one making room.
                    LogCloseFailed(exception, topic.Name);
                    return topic.Current is null;
                }
            }
        }
        finally
        {
            _makingRoom.Release();
        }
    }

    private async ValueTask<Topic> GetOrCreateAsync(string name, TopicSettings settings, bool explicitCreate, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            throw new TopicException(ErrorCode.ServerShuttingDown, "the server is stopping");
        }

        settings = Resolve(settings);
        while (true)
        {
            if (_topics.TryGetValue(name, out var existing))
            {
                if (_creating.TryGetValue(name, out var pending))
                {
                    // Another request is creating it: its outcome is this one's.
                    await pending.WaitAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }

                if (explicitCreate && existing.Settings != settings)
                {
                    throw new TopicException(ErrorCode.TopicSettingsConflict, $"topic '{name}' already exists with {existing.Settings}; requested {settings}");
                }

                return existing;
            }

            if (_topics.Count >= _options.MaxTopics)
            {
                throw new TopicException(ErrorCode.TooManyTopics, $"the server holds its maximum of {_options.MaxTopics} topics");
            }

            var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_creating.TryAdd(name, created.Task))
            {
                continue;
            }

            var topic = NewTopic(name, settings);
            if (!_topics.TryAdd(name, topic))
            {
                _creating.TryRemove(name, out _);
                created.TrySetResult();
                continue;
            }

            try
            {
                await _catalog!.AddAsync(new CatalogEntry(name, settings.RetentionTtlMs, settings.CompactionWindowMs, (byte)settings.Durability, settings.CommitIntervalMs,
                    settings.MaxMessages, settings.MaxBytes, settings.KeepLatestPerKey, settings.TombstoneRetentionMs))
                    .ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or ObjectDisposedException)
            {
                _topics.TryRemove(name, out _);
                LogCreateFailed(exception, name);
                throw new TopicException(ErrorCode.StorageFailure, $"topic '{name}' could not be created on disk: {exception.Message}");
            }
            finally
            {
                _creating.TryRemove(name, out _);
                created.TrySetResult();
            }

            LogCreated(name, settings.ToString(), explicitCreate);
            return topic;
        }
    }

    private Topic NewTopic(string name, TopicSettings settings) =>
        new(name, Path.Combine(_topicsRoot, name), settings, _context, onStorageRecovered: failed => _ = failed.ReopenAfterFailureAsync());

    /// <summary>Topics described by their folders, for the folders the catalog does not know.</summary>
    private IEnumerable<CatalogEntry> FromFolders(IReadOnlySet<string> known)
    {
        foreach (var directory in Directory.EnumerateDirectories(_topicsRoot))
        {
            var name = Path.GetFileName(directory);
            if (known.Contains(name))
            {
                continue;
            }

            if (TopicName.Validate(name, _options.MaxTopicNameLength) is not null || !File.Exists(Path.Combine(directory, TopicSettings.FileName)))
            {
                LogSkippedFolder(directory);
                continue;
            }

            TopicSettings settings;
            try
            {
                settings = Resolve(TopicSettings.Read(directory).Settings);
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
            {
                // Still a topic: it is quarantined when it is opened, with the reason, and every other topic is served.
                LogUnreadableSettings(exception, name);
                settings = Resolve(TopicSettings.Default);
            }

            yield return new CatalogEntry(name, settings.RetentionTtlMs, settings.CompactionWindowMs, (byte)settings.Durability, settings.CommitIntervalMs,
                settings.MaxMessages, settings.MaxBytes, settings.KeepLatestPerKey, settings.TombstoneRetentionMs);
        }
    }

    private TopicSettings Resolve(TopicSettings settings) =>
        settings.Resolve(_options.Durability, _options.CommitInterval, _options.DefaultTombstoneRetention);

    private void ValidateName(string name)
    {
        if (TopicName.Validate(name, _options.MaxTopicNameLength) is { } problem)
        {
            throw new TopicException(ErrorCode.InvalidTopicName, problem);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Created topic {Topic} ({Settings}, explicit={Explicit})")]
    private partial void LogCreated(string topic, string settings, bool @explicit);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic catalog: {What}")]
    private partial void LogCatalogRecovered(string what);

    [LoggerMessage(Level = LogLevel.Error, Message = "Topic {Topic} could not be created on disk")]
    private partial void LogCreateFailed(Exception exception, string topic);

    [LoggerMessage(Level = LogLevel.Information, Message = "Found {Count} topics in {Folder}; each opens when it is first used")]
    private partial void LogOpened(int count, string folder);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipped {Folder}: not a topic folder (bad name or no topic.json)")]
    private partial void LogSkippedFolder(string folder);

    [LoggerMessage(Level = LogLevel.Error, Message = "Topic {Topic}: its topic.json cannot be read; the topic will be quarantined when it is used")]
    private partial void LogUnreadableSettings(Exception exception, string topic);

    [LoggerMessage(Level = LogLevel.Error, Message = "Failed to close topic {Topic}")]
    private partial void LogCloseFailed(Exception exception, string topic);

    [LoggerMessage(Level = LogLevel.Information, Message = "Committed and closed {Open} open topics of {Count}")]
    private partial void LogClosed(int open, int count);
}
