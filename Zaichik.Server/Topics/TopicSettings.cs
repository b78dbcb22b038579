using System.Text.Json;
using System.Text.Json.Serialization;

namespace Zaichik.Server.Topics;

/// <summary>A topic's retention and compaction settings, fixed at creation and kept in <c>topic.json</c> beside its log.</summary>
/// <param name="RetentionTtlMs">How long each message is kept for late subscribers; 0 = no retention.</param>
/// <param name="CompactionWindowMs">A keyed message is dropped if its key was accepted less than this long ago; 0 = off.</param>
internal sealed record TopicSettings(long RetentionTtlMs, long CompactionWindowMs)
{
    public const string FileName = "topic.json";

    /// <summary>What an auto-created topic gets: no retention, no compaction.</summary>
    public static TopicSettings Default { get; } = new(0, 0);

    [JsonIgnore]
    public bool HasRetention => RetentionTtlMs > 0;

    [JsonIgnore]
    public bool HasCompaction => CompactionWindowMs > 0;

    public override string ToString() =>
        $"retentionTtlMs={RetentionTtlMs}, compactionWindowMs={CompactionWindowMs}";

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
        File.WriteAllBytes(temporary, JsonSerializer.SerializeToUtf8Bytes(this, TopicSettingsJsonContext.Default.TopicSettings));
        File.Move(temporary, path, overwrite: true);
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(TopicSettings))]
internal sealed partial class TopicSettingsJsonContext : JsonSerializerContext;
