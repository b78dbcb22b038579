using System.Text.Json;
using System.Text.Json.Serialization;
using Zaichik.Protocol;

namespace Zaichik.Server.Topics;

/// <summary>
/// A topic's settings, fixed at creation. The broker's catalog holds them (<c>TopicCatalog</c>); a copy sits in
/// <c>topic.json</c> beside the log, with the storage format of the log, so that a topic folder explains itself and the
/// catalog can be rebuilt from the folders. The registry stores them resolved: never
/// <see cref="Durability.ServerDefault"/>, and a commit interval only for <see cref="Durability.Interval"/>.
/// </summary>
/// <param name="RetentionTtlMs">How long each message is kept for late subscribers; 0 = no retention.</param>
/// <param name="CompactionWindowMs">A keyed message is dropped if its key was accepted less than this long ago; 0 = off.</param>
/// <param name="Durability">When messages reach the disk.</param>
/// <param name="CommitIntervalMs">For <see cref="Durability.Interval"/>, how often the log is committed.</param>
/// <param name="MaxMessages">Most messages the topic keeps; past it the oldest are removed by the sweep. 0 = no limit.</param>
/// <param name="MaxBytes">Most bytes of log the topic keeps; past it the oldest messages are removed by the sweep. 0 = no limit.</param>
/// <param name="KeepLatestPerKey">Log compaction: only the newest message of each key is kept and delivered (unkeyed ones under retention).</param>
/// <param name="TombstoneRetentionMs">With <paramref name="KeepLatestPerKey"/>: how long a tombstone is kept and delivered; 0 = the server's default.</param>
internal sealed record TopicSettings(
    long RetentionTtlMs, long CompactionWindowMs, Durability Durability = Durability.ServerDefault, long CommitIntervalMs = 0, long MaxMessages = 0, long MaxBytes = 0,
    bool KeepLatestPerKey = false, long TombstoneRetentionMs = 0)
{
    public const string FileName = "topic.json";

    /// <summary>
    /// The storage format this broker writes: logical sequences in every record (format 1 had none), and headers and
    /// idempotent producers where a message has them (format 2 had neither; its logs are still read, see
    /// <see cref="Storage.LogRecord"/>).
    /// </summary>
    public const int StorageFormat = 3;

    /// <summary>The oldest storage format this broker reads.</summary>
    public const int OldestReadableFormat = 2;

    /// <summary>
    /// The longest commit interval, in ms: the longest delay a .NET timer takes (about 49.7 days). The committer waits
    /// it out with <see cref="Task.Delay(TimeSpan, TimeProvider, CancellationToken)"/>, which refuses anything longer.
    /// </summary>
    public const long MaxCommitIntervalMs = uint.MaxValue - 1;

    /// <summary>How long a tombstone stays when neither the topic nor the server says (Kafka's <c>delete.retention.ms</c>): 24 hours.</summary>
    public static readonly TimeSpan DefaultTombstoneRetention = TimeSpan.FromHours(24);

    /// <summary>What an auto-created topic gets: no retention, no compaction, the server's durability.</summary>
    public static TopicSettings Default { get; } = new(0, 0);

    [JsonIgnore]
    public bool HasRetention => RetentionTtlMs > 0;

    [JsonIgnore]
    public bool HasCompaction => CompactionWindowMs > 0;

    /// <summary>True when a count or size limit removes the oldest messages.</summary>
    [JsonIgnore]
    public bool HasLimits => MaxMessages > 0 || MaxBytes > 0;

    public override string ToString() =>
        $"retentionTtlMs={RetentionTtlMs}, compactionWindowMs={CompactionWindowMs}, durability={Durability}"
        + (Durability == Durability.Interval ? $", commitIntervalMs={CommitIntervalMs}" : string.Empty)
        + (MaxMessages > 0 ? $", maxMessages={MaxMessages}" : string.Empty)
        + (MaxBytes > 0 ? $", maxBytes={MaxBytes}" : string.Empty)
        + (KeepLatestPerKey ? $", keepLatestPerKey, tombstoneRetentionMs={TombstoneRetentionMs}" : string.Empty);

    /// <summary>These settings with the server's defaults filled in where they ask for them.</summary>
    public TopicSettings Resolve(Durability serverDurability, TimeSpan serverCommitInterval, TimeSpan? serverTombstoneRetention = null)
    {
        var durability = Durability == Durability.ServerDefault ? serverDurability : Durability;
        var interval = durability != Durability.Interval ? 0
            : CommitIntervalMs > 0 ? CommitIntervalMs
            : Math.Max(1, (long)serverCommitInterval.TotalMilliseconds);
        var tombstoneRetention = !KeepLatestPerKey ? 0
            : TombstoneRetentionMs > 0 ? TombstoneRetentionMs
            : Math.Max(1, (long)(serverTombstoneRetention ?? DefaultTombstoneRetention).TotalMilliseconds);
        return this with { Durability = durability, CommitIntervalMs = interval, TombstoneRetentionMs = tombstoneRetention };
    }

    /// <summary>The settings in <paramref name="directory"/>'s <c>topic.json</c> and the storage format it declares.</summary>
    /// <exception cref="IOException">The file is missing or unreadable.</exception>
    /// <exception cref="JsonException">It is not valid.</exception>
    public static (TopicSettings Settings, int Format) Read(string directory)
    {
        var json = File.ReadAllBytes(Path.Combine(directory, FileName));
        var file = JsonSerializer.Deserialize(json, TopicSettingsJsonContext.Default.TopicFile)
            ?? throw new JsonException($"{Path.Combine(directory, FileName)} is empty");
        return (new TopicSettings(file.RetentionTtlMs, file.CompactionWindowMs, file.Durability, file.CommitIntervalMs, file.MaxMessages ?? 0, file.MaxBytes ?? 0,
            file.KeepLatestPerKey ?? false, file.TombstoneRetentionMs ?? 0), file.Format ?? 1);
    }

    /// <summary>
    /// Makes sure <paramref name="directory"/> holds these settings in <c>topic.json</c> before the log is opened there,
    /// writing it (aside, then renamed) when it is missing, and returns how the log's pages and segments are sized: as
    /// the log was first written, whatever the server's options say now (an address means nothing in another page size).
    /// A format-2 folder is declared format 3 before anything is appended in format 3, so that an older broker refuses it
    /// rather than taking the new records for damage. A folder whose log was written in format 1 is refused: reading it
    /// as this format would lose every message.
    /// </summary>
    /// <exception cref="InvalidDataException">The folder holds a log of another storage format.</exception>
    public Storage.StorageOptions EnsureWritten(string directory, Storage.StorageOptions storage)
    {
        var path = Path.Combine(directory, FileName);
        if (File.Exists(path))
        {
            var json = File.ReadAllBytes(path);
            var existing = JsonSerializer.Deserialize(json, TopicSettingsJsonContext.Default.TopicFile)
                ?? throw new JsonException($"{path} is empty");
            if (existing.Format is >= OldestReadableFormat and <= StorageFormat && existing.PageSizeBits is { } page && existing.SegmentSizeBits is { } segment)
            {
                var sized = storage with { PageSizeBits = page, SegmentSizeBits = segment, MemorySizeBits = Math.Max(storage.MemorySizeBits, page + 1) };
                if (existing.Format != StorageFormat)
                {
                    Write(path, existing with { Format = StorageFormat });
                }

                return sized;
            }

            if (existing.Format is not (>= OldestReadableFormat and <= StorageFormat) && Directory.EnumerateFileSystemEntries(directory, "log.*").Any())
            {
                throw new InvalidDataException(
                    $"its log in '{directory}' is in storage format {existing.Format ?? 1}, written by an earlier Zaichik without sequence numbers; this version reads formats {OldestReadableFormat} and {StorageFormat} only");
            }
        }

        Directory.CreateDirectory(directory);
        Write(path, new TopicFile(StorageFormat, RetentionTtlMs, CompactionWindowMs, Durability, CommitIntervalMs, storage.PageSizeBits, storage.SegmentSizeBits,
            MaxMessages > 0 ? MaxMessages : null, MaxBytes > 0 ? MaxBytes : null, KeepLatestPerKey ? true : null, KeepLatestPerKey ? TombstoneRetentionMs : null));
        return storage;
    }

    /// <summary>Writes <c>topic.json</c> aside, then renames it over the old one.</summary>
    private static void Write(string path, TopicFile file)
    {
        var temporary = path + ".tmp";
        File.WriteAllBytes(temporary, JsonSerializer.SerializeToUtf8Bytes(file, TopicSettingsJsonContext.Default.TopicFile));
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>What <c>topic.json</c> holds: the settings, the storage format, and the log's page and segment sizes.</summary>
    internal sealed record TopicFile(
        int? Format, long RetentionTtlMs, long CompactionWindowMs, Durability Durability, long CommitIntervalMs, int? PageSizeBits = null, int? SegmentSizeBits = null,
        long? MaxMessages = null, long? MaxBytes = null, bool? KeepLatestPerKey = null, long? TombstoneRetentionMs = null);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true, UseStringEnumConverter = true)]
[JsonSerializable(typeof(TopicSettings.TopicFile))]
internal sealed partial class TopicSettingsJsonContext : JsonSerializerContext;
