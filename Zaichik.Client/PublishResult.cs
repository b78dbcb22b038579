namespace Zaichik.Client;

/// <summary>The server's answer to a publish.</summary>
/// <param name="Offset">
/// The stored message's offset in its topic, or, for a duplicate, the offset of the message it duplicates
/// (-1 if the server reported none).
/// </param>
/// <param name="Duplicate">True when the topic's compaction window dropped the message as a repeat of its key.</param>
/// <param name="Durable">True when the message (or, for a duplicate, the original) was already committed to disk.</param>
public readonly record struct PublishResult(long Offset, bool Duplicate, bool Durable = false);
