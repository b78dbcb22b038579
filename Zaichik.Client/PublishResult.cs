namespace Zaichik.Client;

/// <summary>The server's answer to a publish.</summary>
/// <param name="Sequence">
/// The stored message's sequence in its topic (the one its deliveries carry), or, for a duplicate, the sequence of the
/// original it repeats (-1 if the server reported none).
/// </param>
/// <param name="Duplicate">True when the topic's compaction window dropped the message as a repeat of its key.</param>
/// <param name="Durable">True when the message (or, for a duplicate, the original) was already committed to disk.</param>
public readonly record struct PublishResult(long Sequence, bool Duplicate, bool Durable = false);
