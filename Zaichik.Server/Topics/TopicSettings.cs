using System.Text.Json;
using System.Text.Json.Serialization;
using Zaichik.Protocol;

namespace Zaichik.Server.Topics;

/// <summary>
/// A topic's settings, fixed at creation and kept in <c>topic.json</c> beside its log. The registry stores them
/// resolved: never <see cref="Durability.ServerDefault"/>, and a commit interval only for
/// <see cref="Durability.Interval"/>.
/// </summary>
/// <param name="RetentionTtlMs">How long each message is kept for late subscribers; 0 = no retention.</param>
/// <param name="CompactionWindowMs">A keyed message is dropped if its key was accepted less than this long ago; 0 = off.</param>
/// <param name="Durability">When messages reach the disk.</param>
/// <param name="CommitIntervalMs">For <see cref="Durability.Interval"/>, how often the log is committed.</param>
internal sealed record TopicSettings(long RetentionTtlMs, long CompactionWindowMs, Durability Durability = Durability.ServerDefault, long CommitIntervalMs = 0)
{
    public const string FileName = "topic.json";

    /// <summary>
    /// The longest commit interval, in ms: the longest delay a .NET timer takes (about 49.7 days). The committer waits
    /// it out with <see cref="Task.Delay(TimeSpan, TimeProvider, CancellationToken)"/>, which refuses anything longer.
    /// </summary>
    public const long MaxCommitIntervalMs = uint.MaxValue - 1;

    /// <summary>What an auto-created topic gets: no retention, no compaction, the server's durability.</summary>
    public static TopicSettings Default { get; } = new(0, 0);

    [JsonIgnore]
    public bool HasRetention => RetentionTtlMs > 0;

    [JsonIgnore]
    public bool HasCompaction => CompactionWindowMs > 0;

    public override string ToString() =>
        $"retentionTtlMs={RetentionTtlMs}, compactionWindowMs={CompactionWindowMs}, durability={Durability}"
        + (Durability == Durability.Interval ? $", commitIntervalMs={CommitIntervalMs}" : string.Empty);

    /// <summary>These settings with the server's defaults filled in where they ask for them.</summary>
    public TopicSettings Resolve(Durability serverDurability, TimeSpan serverCommitInterval)
    {
        var durability = Durability == Durability.ServerDefault ? serverDurability : Durability;
        var interval = durability != Durability.Interval ? 0
            : CommitIntervalMs > 0 ? CommitIntervalMs
            : Math.Max(1, (long)serverCommitInterval.TotalMilliseconds);
        return this with { Durability = durability, CommitIntervalMs = interval };
    }

    public static TopicSettings Read(string directory)
    {
        var json = File.ReadAllBytes(Path.Combine(directory, FileName));
        return JsonSerializer.Deserialize(json, TopicSettingsJsonContext.Default.TopicSettings)
            ?? throw new InvalidDataException($"{Path.Combine(directory, FileName)} is empty");
    }

    /// <summary>Writes the settings file atomically (write aside, then rename), so a crash leaves the old or the new file.</summary>
    public void Write(string directory)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, FileName);
        var temporary = path + ".tmp";
        using (var file = File.Create(temporary))
        {
            file.Write(JsonSerializer.SerializeToUtf8Bytes(this, TopicSettingsJsonContext.Default.TopicSettings));
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);

        // The topic's folder (new on creation) and the rename must survive a power cut, or the topic's acknowledged
        // records would be left in a folder that is not recognised as a topic.
        Storage.Internal.DirectorySync.Flush(directory);
        if (Path.GetDirectoryName(Path.GetFullPath(directory)) is { } parent)
        {
            Storage.Internal.DirectorySync.Flush(parent);
        }
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true, UseStringEnumConverter = true)]
[JsonSerializable(typeof(TopicSettings))]
internal sealed partial class TopicSettingsJsonContext : JsonSerializerContext;
