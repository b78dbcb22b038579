using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;
using Zaichik.Server.Storage;

namespace Zaichik.Server.Topics;

/// <summary>
/// Every topic of the broker, by name. Topics live under <c>&lt;data&gt;/topics/&lt;name&gt;/</c>; on start all
/// of them are reopened. Topics are created on demand and never deleted.
/// </summary>
internal sealed partial class TopicRegistry : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Topic> _topics = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _quarantined = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _createGate = new(1, 1);
    private readonly ZaichikServerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<TopicRegistry> _logger;
    private readonly ILoggerFactory _loggers;
    private readonly string _topicsRoot;
    private int _disposed;

    public TopicRegistry(IOptions<ZaichikServerOptions> options, TimeProvider time, ILogger<TopicRegistry> logger, ILoggerFactory loggers)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;
        _loggers = loggers;
        _topicsRoot = Path.Combine(Path.GetFullPath(_options.DataPath), "topics");
    }

    public int Count => _topics.Count;

    public ICollection<Topic> Topics => _topics.Values;

    /// <summary>Reopens every topic found in the data folder and restores each one's compaction window.</summary>
    public async ValueTask OpenExistingAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(_topicsRoot);
        foreach (var directory in Directory.EnumerateDirectories(_topicsRoot))
        {
            var name = Path.GetFileName(directory);
            if (TopicName.Validate(name, _options.MaxTopicNameLength) is not null || !File.Exists(Path.Combine(directory, TopicSettings.FileName)))
            {
                LogSkippedFolder(directory);
                continue;
            }

            Topic? topic = null;
            try
            {
                var settings = Resolve(TopicSettings.Read(directory));
                topic = OpenTopic(name, directory, settings);
                if (await topic.Log.CutCorruptTailAsync(cancellationToken).ConfigureAwait(false) is { } dropped)
                {
                    LogCorruptTail(name, dropped.Records, dropped.From, dropped.To);
                }

                var keys = await topic.RecoverAsync(cancellationToken).ConfigureAwait(false);
                _topics[name] = topic;
                LogReopened(name, settings.ToString(), topic.Log.BeginAddress, topic.Log.TailAddress, keys);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                _quarantined[name] = exception.Message;
                LogQuarantined(exception, name, directory);
                if (topic is not null)
                {
                    await topic.DisposeAsync().AsTask().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }
            }
        }

        LogOpened(_topics.Count, _topicsRoot);
    }

    public bool TryGet(string name, out Topic topic) => _topics.TryGetValue(name, out topic!);

    /// <summary>The topic for a Publish or Subscribe: created with default settings if auto-create is on.</summary>
    public ValueTask<Topic> GetForUseAsync(string name, CancellationToken cancellationToken)
    {
        if (_topics.TryGetValue(name, out var topic))
        {
            return ValueTask.FromResult(topic);
        }

        ValidateName(name);
        if (!_options.AutoCreateTopics)
        {
            throw new TopicException(ErrorCode.TopicNotFound, $"topic '{name}' does not exist and this server does not create topics automatically; create it with CreateTopic");
        }

        return GetOrCreateAsync(name, TopicSettings.Default, explicitCreate: false, cancellationToken);
    }

    /// <summary>CreateTopic: creates the topic, or confirms an existing one with identical settings.</summary>
    public async ValueTask<Topic> CreateAsync(string name, TopicSettings settings, CancellationToken cancellationToken)
    {
        ValidateName(name);
        if (settings.RetentionTtlMs < 0 || settings.CompactionWindowMs < 0 || settings.CommitIntervalMs < 0)
        {
            throw new TopicException(ErrorCode.InvalidArgument, $"retentionTtlMs, compactionWindowMs and commitIntervalMs must be 0 or positive; got {settings}");
        }

        // A longer one would fail in the committer's timer (or, past TimeSpan's range, in the topic's constructor)
        // after the topic's folder was written.
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

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (var topic in _topics.Values)
        {
            try
            {
                await topic.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception exception)
            {
                LogCloseFailed(exception, topic.Name);
            }
        }

        LogClosed(_topics.Count);
    }

    private async ValueTask<Topic> GetOrCreateAsync(string name, TopicSettings settings, bool explicitCreate, CancellationToken cancellationToken)
    {
        await _createGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _disposed) != 0)
            {
                throw new TopicException(ErrorCode.ServerShuttingDown, "the server is stopping");
            }

            settings = Resolve(settings);
            if (_quarantined.TryGetValue(name, out var reason))
            {
                throw new TopicException(ErrorCode.StorageFailure, $"topic '{name}' is quarantined: its files could not be opened ({reason}); the server log says more");
            }

            if (_topics.TryGetValue(name, out var existing))
            {
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

            var directory = Path.Combine(_topicsRoot, name);
            Topic topic;
            try
            {
                settings.Write(directory);
                topic = OpenTopic(name, directory, settings);
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
            {
                LogCreateFailed(exception, name);
                throw new TopicException(ErrorCode.StorageFailure, $"topic '{name}' could not be created on disk: {exception.Message}");
            }

            _topics[name] = topic;
            LogCreated(name, settings.RetentionTtlMs, settings.CompactionWindowMs, explicitCreate);
            return topic;
        }
        finally
        {
            _createGate.Release();
        }
    }

    private TopicSettings Resolve(TopicSettings settings) =>
        settings.Resolve(_options.Durability, _options.CommitInterval);

    private Topic OpenTopic(string name, string directory, TopicSettings settings) =>
        new(name, directory, settings, TopicLog.Open(directory, _options.Storage, inMemory: settings.Durability == Durability.Memory), _time, _loggers.CreateLogger<TopicCommitter>(),
            onStorageRecovered: failed => _ = ReopenAsync(failed));

    /// <summary>
    /// Replaces a topic whose log failed a write, once its disk takes writes again: the old topic is retired (its
    /// subscribers' connections are closed) and closed, and the topic is reopened from its last commit, exactly as
    /// a restart would. Records appended after that commit are lost, as in a crash; Always publishes among them
    /// were never acknowledged.
    /// </summary>
    private async Task ReopenAsync(Topic failed)
    {
        await _createGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _disposed) != 0 || !_topics.TryGetValue(failed.Name, out var current) || !ReferenceEquals(current, failed))
            {
                return;
            }

            failed.Retire();
            try
            {
                // A failed FasterLog may not finish closing; the reopened one does not need it to.
                await failed.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            }
            catch (Exception exception)
            {
                LogCloseFailed(exception, failed.Name);
            }

            Topic? topic = null;
            try
            {
                topic = OpenTopic(failed.Name, failed.Directory, failed.Settings);
                if (await topic.Log.CutCorruptTailAsync(CancellationToken.None).ConfigureAwait(false) is { } dropped)
                {
                    LogCorruptTail(failed.Name, dropped.Records, dropped.From, dropped.To);
                }

                var keys = await topic.RecoverAsync(CancellationToken.None).ConfigureAwait(false);
                _topics[failed.Name] = topic;
                LogReopenedAfterFailure(failed.Name, topic.Log.BeginAddress, topic.Log.TailAddress, keys);
            }
            catch (Exception exception)
            {
                _topics.TryRemove(failed.Name, out _);
                _quarantined[failed.Name] = exception.Message;
                LogQuarantined(exception, failed.Name, failed.Directory);
                if (topic is not null)
                {
                    await topic.DisposeAsync().AsTask().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }
            }
        }
        finally
        {
            _createGate.Release();
        }
    }

    private void ValidateName(string name)
    {
        if (TopicName.Validate(name, _options.MaxTopicNameLength) is { } problem)
        {
            throw new TopicException(ErrorCode.InvalidTopicName, problem);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Created topic {Topic} (retentionTtlMs={RetentionTtlMs}, compactionWindowMs={CompactionWindowMs}, explicit={Explicit})")]
    private partial void LogCreated(string topic, long retentionTtlMs, long compactionWindowMs, bool @explicit);

    [LoggerMessage(Level = LogLevel.Information, Message = "Reopened topic {Topic} ({Settings}; log {BeginAddress}..{TailAddress}; {Keys} keys in the compaction window)")]
    private partial void LogReopened(string topic, string settings, long beginAddress, long tailAddress, int keys);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic} reopened from its last commit after a storage failure (log {BeginAddress}..{TailAddress}; {Keys} keys in the compaction window); publishes are accepted again")]
    private partial void LogReopenedAfterFailure(string topic, long beginAddress, long tailAddress, int keys);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Topic {Topic}: cut a corrupt tail at recovery; dropped {Records} recognisable records at offsets {From}..{To}")]
    private partial void LogCorruptTail(string topic, int records, long from, long to);

    [LoggerMessage(Level = LogLevel.Error, Message = "Topic {Topic} is quarantined: its files in {Folder} could not be opened; it is refused until repaired, and every other topic is served")]
    private partial void LogQuarantined(Exception exception, string topic, string folder);

    [LoggerMessage(Level = LogLevel.Error, Message = "Topic {Topic} could not be created on disk")]
    private partial void LogCreateFailed(Exception exception, string topic);

    [LoggerMessage(Level = LogLevel.Information, Message = "Opened {Count} topics from {Folder}")]
    private partial void LogOpened(int count, string folder);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipped {Folder}: not a topic folder (bad name or no topic.json)")]
    private partial void LogSkippedFolder(string folder);

    [LoggerMessage(Level = LogLevel.Error, Message = "Failed to close topic {Topic}")]
    private partial void LogCloseFailed(Exception exception, string topic);

    [LoggerMessage(Level = LogLevel.Information, Message = "Committed and closed {Count} topics")]
    private partial void LogClosed(int count);
}
