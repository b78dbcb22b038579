namespace Zaichik.Tests.Crash;

/// <summary>What one publisher did in one generation.</summary>
/// <param name="Attempted">Publishes handed to the client: sequences 0..Attempted-1. Any of them may be stored.</param>
/// <param name="Acknowledged">Sequences whose publish completed with <c>Durable == true</c>: all must survive.</param>
/// <param name="NotDurable">Sequences acknowledged without <c>Durable</c>, which an Always topic must never do.</param>
/// <param name="Ending">How the publisher stopped (normally the lost connection).</param>
/// <param name="Unexpected">Set when the ending was not a lost connection: a server error, a hung ack, no kill.</param>
internal sealed record PublisherOutcome(
    int Generation,
    int Publisher,
    int Attempted,
    IReadOnlySet<int> Acknowledged,
    IReadOnlyList<int> NotDurable,
    string Ending,
    string? Unexpected);
