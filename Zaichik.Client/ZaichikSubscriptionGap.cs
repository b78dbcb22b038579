namespace Zaichik.Client;

/// <summary>
/// Messages a subscription missed while its client was disconnected: the topic no longer held them when the
/// subscription was restored (no retention, or they expired), so it resumed at <see cref="LastMissed"/> + 1.
/// </summary>
/// <param name="Topic">The subscription's topic.</param>
/// <param name="FirstMissed">The first sequence it did not receive.</param>
/// <param name="LastMissed">The last sequence it did not receive.</param>
public sealed record ZaichikSubscriptionGap(string Topic, long FirstMissed, long LastMissed)
{
    /// <summary>How many sequences were missed (some may never have held a message, for example after a crash of the server).</summary>
    public long Count => LastMissed - FirstMissed + 1;
}
