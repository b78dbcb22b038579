namespace Zaichik.Server.Topics;

/// <summary>What happened to one publish: stored at <see cref="Offset"/>, or dropped as a duplicate of the message at <see cref="Offset"/>.</summary>
internal readonly record struct PublishOutcome(long Offset, bool Duplicate);
