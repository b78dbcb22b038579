using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Zaichik.Protocol;
using Zaichik.Server.Storage;
using Zaichik.Server.Topics;

namespace Zaichik.Tests.Topics;

/// <summary>A topic on a real FasterLog in a temporary folder, on a fake clock.</summary>
internal sealed class TopicTestContext : IAsyncDisposable
{
    private TopicTestContext(string directory, Topic topic, FakeTimeProvider time, TopicContext context)
    {
        Directory = directory;
        Topic = topic;
        Time = time;
        Context = context;
    }

    public string Directory { get; }

    public Topic Topic { get; private set; }

    public FakeTimeProvider Time { get; }

    public TopicContext Context { get; }

    /// <summary>The open log (the topic opens on its first publish or subscribe).</summary>
    public TopicLog Log => Topic.Current?.Log ?? throw new InvalidOperationException("the topic is closed");

    /// <summary>A topic on a <see cref="FakeTimeProvider"/>, or on <paramref name="time"/> when given.</summary>
    public static TopicTestContext Create(long retentionTtlMs = 0, long compactionWindowMs = 0, TimeProvider? time = null, StorageOptions? storage = null,
        Durability durability = Durability.Interval, int maxOpenTopics = 100, ProducerWindowOptions? producers = null, long maxMessages = 0,
        bool keepLatestPerKey = false)
    {
        var directory = Path.Combine(Path.GetTempPath(), "zaichik-topic-" + Guid.NewGuid().ToString("N"));
        var fake = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var context = new TopicContext(storage ?? new StorageOptions(), new FileBudget(1_000), new OpenTopicLimiter(maxOpenTopics), time ?? fake, NullLoggerFactory.Instance, producers)
        {
            // A topic that keeps the latest value per key compacts at every sweep.
            Compaction = keepLatestPerKey ? new LogCompactionOptions(0, 0) : LogCompactionOptions.Default,
        };
        var settings = new TopicSettings(retentionTtlMs, compactionWindowMs, durability, MaxMessages: maxMessages, KeepLatestPerKey: keepLatestPerKey)
            .Resolve(durability, TimeSpan.FromMilliseconds(100));
        return new TopicTestContext(directory, new Topic("test", directory, settings, context), fake, context);
    }

    /// <summary>As a broker restart does: the topic is closed for good and a new one opens the same folder with the same settings.</summary>
    public async Task RestartAsync()
    {
        await Topic.DisposeAsync();
        Topic = new Topic(Topic.Name, Directory, Topic.Settings, Context);
    }

    public async Task<PublishOutcome> PublishAsync(string payload, string? key = null, ProducerStamp producer = default, byte[]? headers = null) =>
        await Topic.PublishAsync(
            key is null ? null : (ReadOnlyMemory<byte>?)Encoding.UTF8.GetBytes(key),
            Encoding.UTF8.GetBytes(payload),
            headers,
            producer,
            CancellationToken.None);

    /// <summary>Every message from the oldest to the newest, as (sequence, timestamp, key, payload).</summary>
    public async Task<List<(long Sequence, long TimestampMs, string? Key, string Payload)>> ReadAllAsync()
    {
        var messages = new List<(long, long, string?, string)>();
        var log = Log;
        using var reader = log.OpenReaderAtBegin();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            while (reader.TryRead(out var message))
            {
                messages.Add((message.Sequence, message.TimestampMs, message.HasKey ? Encoding.UTF8.GetString(message.Key) : null, Encoding.UTF8.GetString(message.Payload)));
                reader.Release();
            }

            if (reader.Position >= log.TailAddress)
            {
                return messages;
            }

            (await reader.WaitAsync(timeout.Token)).ShouldBeTrue();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Topic.DisposeAsync();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
