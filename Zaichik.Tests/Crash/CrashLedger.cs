namespace Zaichik.Tests.Crash;

/// <summary>
/// Everything the crash test published across all generations: what each publisher attempted, what the server
/// acknowledged as durable, and the sentinels. The recovered log is checked against it.
/// </summary>
internal sealed class CrashLedger
{
    private readonly Dictionary<(int Generation, int Publisher), PublisherOutcome> _publishers = [];
    private readonly HashSet<int> _sentinels = [];

    public IEnumerable<PublisherOutcome> Publishers => _publishers.Values;

    public int AcknowledgedCount => _publishers.Values.Sum(outcome => outcome.Acknowledged.Count) + _sentinels.Count;

    public void Record(PublisherOutcome outcome) => _publishers.Add((outcome.Generation, outcome.Publisher), outcome);

    /// <summary>Records a sentinel whose publish was acknowledged as durable.</summary>
    public void RecordSentinel(int generation) => _sentinels.Add(generation);

    /// <summary>True when the test published this payload, acknowledged or not.</summary>
    public bool WasPublished(CrashPayload payload) =>
        payload.IsSentinel
            ? _sentinels.Contains(payload.Generation)
            : _publishers.TryGetValue((payload.Generation, payload.Publisher), out var outcome) && payload.Sequence < outcome.Attempted;

    public bool IsAcknowledged(CrashPayload payload) =>
        payload.IsSentinel
            ? _sentinels.Contains(payload.Generation)
            : _publishers.TryGetValue((payload.Generation, payload.Publisher), out var outcome) && outcome.Acknowledged.Contains(payload.Sequence);

    /// <summary>Every payload that must be in the log, in the order it was published.</summary>
    public IEnumerable<CrashPayload> Acknowledged()
    {
        foreach (var generation in _publishers.Keys.Select(key => key.Generation).Concat(_sentinels).Distinct().Order())
        {
            foreach (var outcome in _publishers.Values.Where(outcome => outcome.Generation == generation).OrderBy(outcome => outcome.Publisher))
            {
                foreach (var sequence in outcome.Acknowledged.Order())
                {
                    yield return new CrashPayload(generation, outcome.Publisher, sequence, IsSentinel: false);
                }
            }

            if (_sentinels.Contains(generation))
            {
                yield return new CrashPayload(generation, -1, -1, IsSentinel: true);
            }
        }
    }
}
