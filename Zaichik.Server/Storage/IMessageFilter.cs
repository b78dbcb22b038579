namespace Zaichik.Server.Storage;

/// <summary>
/// What a topic tells the readers of its log to step over (log compaction: superseded values, expired tombstones). The
/// storage layer knows nothing of why; it asks for each message a reader would return, on the reader's thread, so an
/// implementation must be safe to call from many readers at once while the topic appends.
/// </summary>
internal interface IMessageFilter
{
    /// <summary>True when no reader should return <paramref name="message"/> now.</summary>
    bool Skips(LogMessage message);
}
