namespace Zaichik.Server.Topics;

/// <summary>What happened to one publish.</summary>
/// <param name="Offset">Where the message was stored, or for a duplicate where the message it duplicates was.</param>
/// <param name="Duplicate">True when the compaction window dropped it.</param>
/// <param name="DurableAt">The message is on disk once the log is committed past this address.</param>
internal readonly record struct PublishOutcome(long Offset, bool Duplicate, long DurableAt);
