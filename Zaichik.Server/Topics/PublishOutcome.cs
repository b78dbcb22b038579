namespace Zaichik.Server.Topics;

/// <summary>What happened to one publish.</summary>
/// <param name="Sequence">The stored message's sequence, or for a duplicate the sequence of the message it duplicates.</param>
/// <param name="Duplicate">True when the compaction window dropped it.</param>
/// <param name="Storage">The storage it went to: whether it is durable is asked of that log.</param>
internal readonly record struct PublishOutcome(long Sequence, bool Duplicate, OpenTopic Storage);
