using Zaichik.Protocol;

namespace Zaichik.Client;

public sealed partial class ZaichikClient
{
    /// <summary>
    /// Creates a topic, or confirms one that already exists with the same settings.
    /// </summary>
    /// <param name="topic">ASCII letters, digits, '.', '-' and '_', not starting with '.'.</param>
    /// <param name="options">Retention and compaction; <see cref="TopicOptions.Default"/> when null.</param>
    /// <param name="cancellationToken">Stops waiting for the answer; the request may still take effect.</param>
    /// <exception cref="ArgumentException">The topic name or an option is invalid.</exception>
    /// <exception cref="ZaichikServerException">The server refused, for example <see cref="ErrorCode.TopicSettingsConflict"/>.</exception>
    public async ValueTask CreateTopicAsync(string topic, TopicOptions? options = null, CancellationToken cancellationToken = default)
    {
        ValidateTopic(topic);
        options ??= TopicOptions.Default;
        options.Validate();
        var frame = new CreateTopicFrame(
            0,
            topic,
            (long)options.RetentionTtl.TotalMilliseconds,
            (long)options.CompactionWindow.TotalMilliseconds,
            options.Durability,
            (long)options.CommitInterval.TotalMilliseconds,
            options.MaxMessages,
            options.MaxBytes,
            options.KeepLatestPerKey,
            (long)options.TombstoneRetention.TotalMilliseconds);
        await RequestAsync(FrameType.CreateTopic, topic, frame, cancellationToken).ConfigureAwait(false);
    }
}
