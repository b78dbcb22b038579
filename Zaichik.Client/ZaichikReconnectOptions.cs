namespace Zaichik.Client;

/// <summary>
/// How a client reconnects after losing its connection: attempt n waits a random time between half and all of
/// <c>min(MinDelay × 2^(n-1), MaxDelay)</c> (exponential backoff with jitter, so many clients do not return at once).
/// </summary>
public sealed record ZaichikReconnectOptions
{
    private static readonly TimeSpan RerouteFloor = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// Reconnect at all. Default true; false: a lost connection ends the client (every call then fails). A cluster node's
    /// redirect is followed either way, with one attempt to connect to the leader.
    /// </summary>
    public bool Enabled { get; init; } = true;

    /// <summary>The delay before the first attempt, and the base of the backoff. Default 100 ms.</summary>
    public TimeSpan MinDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest delay between attempts. Default 5 s.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How many attempts in a row may fail before the client gives up and closes (waiting calls then fail with
    /// <see cref="ZaichikConnectionException"/>). Default 0: unlimited.
    /// </summary>
    public int MaxAttempts { get; init; }

    /// <summary>The delay before attempt <paramref name="attempt"/> (1-based), with jitter from <paramref name="random"/>.</summary>
    internal TimeSpan DelayBefore(int attempt, Random random)
    {
        var exponent = Math.Min(attempt - 1, 30);
        var ceiling = Math.Min(MinDelay.Ticks * (double)(1L << exponent), MaxDelay.Ticks);
        return TimeSpan.FromTicks((long)(ceiling * (0.5 + (random.NextDouble() / 2))));
    }

    /// <summary>
    /// The delay before the <paramref name="attempt"/>-th reconnect in a row that a cluster node asked for (a redirect
    /// or NoLeader, the server alive): the same backoff, but from at least 50 ms, so that nodes that disagree about a
    /// leader cannot make the client reconnect in a hot loop whatever <see cref="MinDelay"/> says.
    /// </summary>
    internal TimeSpan RerouteDelayBefore(int attempt, Random random)
    {
        var minimum = Math.Max(MinDelay.Ticks, RerouteFloor.Ticks);
        var exponent = Math.Min(attempt - 1, 30);
        var ceiling = Math.Min(minimum * (double)(1L << exponent), Math.Max(MaxDelay.Ticks, minimum));
        return TimeSpan.FromTicks((long)(ceiling * (0.5 + (random.NextDouble() / 2))));
    }

    internal void Validate()
    {
        if (MinDelay < TimeSpan.Zero || MinDelay.TotalMilliseconds > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException("Reconnect:MinDelay", MinDelay, "Reconnect:MinDelay must be 0 or more");
        }

        ZaichikClientOptions.RequirePositive(MaxDelay, "Reconnect:MaxDelay");
        if (MaxDelay < MinDelay)
        {
            throw new ArgumentOutOfRangeException("Reconnect:MaxDelay", MaxDelay, $"Reconnect:MaxDelay ({MaxDelay}) must not be less than Reconnect:MinDelay ({MinDelay})");
        }

        if (MaxAttempts < 0)
        {
            throw new ArgumentOutOfRangeException("Reconnect:MaxAttempts", MaxAttempts, "Reconnect:MaxAttempts must be 0 (unlimited) or more");
        }
    }
}
