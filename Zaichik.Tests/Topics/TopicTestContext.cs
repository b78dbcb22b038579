using System.Text;
using Microsoft.Extensions.Time.Testing;
using Zaichik.Server.Storage;
using Zaichik.Server.Topics;

namespace Zaichik.Tests.Topics;

/// <summary>A topic on a real FasterLog in a temporary folder, on a fake clock.</summary>
internal sealed class TopicTestContext : IAsyncDisposable
{
    private readonly byte[] _scratch = new byte[64 * 1024];

    private TopicTestContext(string directory, Topic topic, FakeTimeProvider time)
    {
        Directory = directory;
        Topic = topic;
        Time = time;
    }

    public string Directory { get; }

    public Topic Topic { get; }

    public FakeTimeProvider Time { get; }

    /// <summary>A topic on a <see cref="FakeTimeProvider"/>, or on <paramref name="time"/> when given.</summary>
    public static TopicTestContext Create(long retentionTtlMs = 0, long compactionWindowMs = 0, TimeProvider? time = null, StorageOptions? storage = null)
    {
        var directory = Path.Combine(Path.GetTempPath(), "zaichik-topic-" + Guid.NewGuid().ToString("N"));
        var fake = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var settings = new TopicSettings(retentionTtlMs, compactionWindowMs);
        var topic = new Topic("test", directory, settings, TopicLog.Open(directory, storage ?? new StorageOptions()), time ?? fake);
        return new TopicTestContext(directory, topic, fake);
    }

    public async Task<PublishOutcome> PublishAsync(string payload, string? key = null) =>
        await Topic.PublishAsync(
            key is null ? null : (ReadOnlyMemory<byte>?)Encoding.UTF8.GetBytes(key),
            Encoding.UTF8.GetBytes(payload),
            _scratch,
            CancellationToken.None);

    /// <summary>Every record from <paramref name="from"/> to the tail, as (offset, timestamp, key, payload).</summary>
    public async Task<List<(long Offset, long TimestampMs, string? Key, string Payload)>> ReadAllAsync(long from)
    {
        var records = new List<(long, long, string?, string)>();
        var tail = Topic.Log.TailAddress;
        using var iterator = Topic.Log.Range(from, tail);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            while (iterator.GetNext(out var entry, out var length, out var address))
            {
                LogRecord.TryRead(entry.AsSpan(0, length), out var record).ShouldBeTrue();
                records.Add((address, record.TimestampMs, record.HasKey ? Encoding.UTF8.GetString(record.Key) : null, Encoding.UTF8.GetString(record.Part)));
            }

            if (iterator.NextAddress >= tail || !await iterator.WaitAsync(timeout.Token))
            {
                return records;
            }
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
