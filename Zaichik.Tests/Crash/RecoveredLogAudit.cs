namespace Zaichik.Tests.Crash;

/// <summary>
/// Checks a log read back after a crash against the <see cref="CrashLedger"/>. Each publisher writes over one
/// connection, which the server handles in order, and recovery restores a prefix of the log; so what survives of
/// a publisher is exactly its sequences 0..n-1, in order, with every acknowledged one among them.
/// </summary>
internal sealed class RecoveredLogAudit
{
    /// <summary>Problems listed in full; beyond this only counted, so a broken log still gives a readable failure.</summary>
    private const int ListedProblems = 40;

    private readonly List<string> _problems = [];

    private RecoveredLogAudit()
    {
    }

    public int Present { get; private set; }

    public int Acknowledged { get; private set; }

    public int Missing { get; private set; }

    /// <summary>Present although their publish never completed: committed just before the kill. Allowed.</summary>
    public int UnacknowledgedPresent { get; private set; }

    /// <summary>The part of <see cref="UnacknowledgedPresent"/> published in <c>generation</c>.</summary>
    public int UnacknowledgedPresentInGeneration { get; private set; }

    public int ProblemCount { get; private set; }

    public string Problems =>
        string.Join(Environment.NewLine, _problems)
        + (ProblemCount > _problems.Count ? $"{Environment.NewLine}... and {ProblemCount - _problems.Count} more" : "");

    /// <param name="read">Everything read from the restarted server, up to and including this restart's sentinel.</param>
    /// <param name="previousRead">What the previous restart read: recovery must never change history that was already read.</param>
    public static RecoveredLogAudit Check(
        IReadOnlyList<RecoveredMessage> read, CrashLedger ledger, IReadOnlyList<RecoveredMessage> previousRead, int generation)
    {
        var audit = new RecoveredLogAudit { Present = read.Count };
        audit.CheckLog(read, ledger, generation);
        audit.CheckAcknowledgedArePresent(read, ledger);
        audit.CheckHistoryIsKept(read, previousRead);
        audit.CheckPublishers(ledger);
        return audit;
    }

    private void CheckLog(IReadOnlyList<RecoveredMessage> read, CrashLedger ledger, int generation)
    {
        var seen = new Dictionary<string, long>(StringComparer.Ordinal);
        var lastSequence = new Dictionary<(int Generation, int Publisher), int>();
        var phase = 0;
        long previousBrokerSequence = 0;
        foreach (var (brokerSequence, text) in read)
        {
            if (brokerSequence <= previousBrokerSequence)
            {
                Problem($"broker sequence {brokerSequence} was delivered after {previousBrokerSequence}");
            }

            previousBrokerSequence = brokerSequence;
            if (!seen.TryAdd(text, brokerSequence))
            {
                Problem($"duplicate: '{text}' at sequence {seen[text]} and again at {brokerSequence}");
                continue;
            }

            if (!CrashPayload.TryParse(text, out var payload))
            {
                Problem($"corrupt: sequence {brokerSequence} holds '{Shorten(text)}' ({text.Length} chars), which the test never wrote");
                continue;
            }

            if (!ledger.WasPublished(payload))
            {
                Problem($"phantom: '{text}' at sequence {brokerSequence} was never published");
                continue;
            }

            if (payload.Phase < phase)
            {
                Problem($"disorder: '{text}' at sequence {brokerSequence} follows records published after it (after a later restart)");
            }

            phase = Math.Max(phase, payload.Phase);
            if (!ledger.IsAcknowledged(payload))
            {
                UnacknowledgedPresent++;
                if (payload.Generation == generation)
                {
                    UnacknowledgedPresentInGeneration++;
                }
            }

            if (payload.IsSentinel)
            {
                continue;
            }

            var key = (payload.Generation, payload.Publisher);
            var expected = lastSequence.GetValueOrDefault(key, -1) + 1;
            if (payload.Sequence < expected)
            {
                Problem($"disorder: '{text}' at sequence {brokerSequence} comes after sequence {expected - 1} of the same publisher");
            }
            else if (payload.Sequence > expected)
            {
                var absent = payload.Sequence - 1 == expected ? $"sequence {expected}" : $"sequences {expected}..{payload.Sequence - 1}";
                Problem($"gap: '{text}' at sequence {brokerSequence} is present but {absent} of g{payload.Generation}-p{payload.Publisher} are not before it");
            }

            lastSequence[key] = Math.Max(payload.Sequence, lastSequence.GetValueOrDefault(key, -1));
        }
    }

    private void CheckAcknowledgedArePresent(IReadOnlyList<RecoveredMessage> read, CrashLedger ledger)
    {
        var present = read.Select(message => message.Payload).ToHashSet(StringComparer.Ordinal);

        // Losses are reported as runs of one publisher's sequences: a lost commit loses hundreds at once.
        (CrashPayload First, CrashPayload Last)? run = null;
        foreach (var payload in ledger.Acknowledged())
        {
            Acknowledged++;
            if (present.Contains(payload.ToString()))
            {
                continue;
            }

            Missing++;
            if (run is { } current && !payload.IsSentinel && !current.Last.IsSentinel
                && current.Last with { Sequence = current.Last.Sequence + 1 } == payload)
            {
                run = (current.First, payload);
                continue;
            }

            ReportLost(run);
            run = (payload, payload);
        }

        ReportLost(run);
    }

    private void ReportLost((CrashPayload First, CrashPayload Last)? run)
    {
        if (run is not { } lost)
        {
            return;
        }

        var what = lost.First == lost.Last
            ? $"'{lost.First}' was"
            : $"'{lost.First}'..'{lost.Last}' ({lost.Last.Sequence - lost.First.Sequence + 1} messages) were";
        Problem($"lost: {what} acknowledged as durable but not in the recovered log");
    }

    private void CheckHistoryIsKept(IReadOnlyList<RecoveredMessage> read, IReadOnlyList<RecoveredMessage> previousRead)
    {
        for (var i = 0; i < previousRead.Count; i++)
        {
            if (i >= read.Count || read[i] != previousRead[i])
            {
                var now = i < read.Count ? $"'{Shorten(read[i].Payload)}' at sequence {read[i].BrokerSequence}" : "nothing";
                Problem($"history changed: message {i} was '{previousRead[i].Payload}' at sequence {previousRead[i].BrokerSequence} after the previous restart, now {now}");
                return;
            }
        }
    }

    private void CheckPublishers(CrashLedger ledger)
    {
        foreach (var outcome in ledger.Publishers)
        {
            if (outcome.NotDurable.Count > 0)
            {
                Problem($"g{outcome.Generation}-p{outcome.Publisher}: {outcome.NotDurable.Count} publishes to an Always topic were acknowledged with Durable == false, first sequence {outcome.NotDurable[0]}");
            }

            if (outcome.Unexpected is not null)
            {
                Problem($"g{outcome.Generation}-p{outcome.Publisher}: {outcome.Unexpected}");
            }
        }
    }

    private void Problem(string problem)
    {
        ProblemCount++;
        if (_problems.Count < ListedProblems)
        {
            _problems.Add(problem);
        }
    }

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..80] + "...";
}
