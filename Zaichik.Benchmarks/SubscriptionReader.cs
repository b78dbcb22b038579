using System.Diagnostics;
using Zaichik.Client;

namespace Zaichik.Benchmarks;

/// <summary>
/// Reads a subscription until an expected number of messages arrived, committing in batches, checking that
/// sequences only increase, and optionally waiting a quiet period to prove nothing more arrives.
/// </summary>
internal static class SubscriptionReader
{
    /// <param name="commitEvery">Commit after every this many messages; the last message is always committed.</param>
    /// <param name="quietPeriod">After the expected count, keep reading this long to catch extra messages (zero: stop at once).</param>
    public static async Task<ReadOutcome> ReadAsync(
        ZaichikClient client,
        ZaichikSubscription subscription,
        long expected,
        int commitEvery,
        TimeSpan quietPeriod,
        CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        long received = 0;
        long outOfOrder = 0;
        long lastSequence = -1;
        long completedAt = 0;
        await foreach (var message in subscription.WithCancellation(stop.Token))
        {
            if (message.Sequence <= lastSequence)
            {
                outOfOrder++;
            }

            lastSequence = message.Sequence;
            received++;
            if (received % commitEvery == 0 || received == expected)
            {
                await client.CommitAsync(message, cancellationToken);
            }

            if (received == expected)
            {
                // The clock stops once the last Commit is handed to the connection.
                completedAt = Stopwatch.GetTimestamp();
                if (quietPeriod <= TimeSpan.Zero)
                {
                    break;
                }

                stop.CancelAfter(quietPeriod);
            }
        }

        return new ReadOutcome(received, outOfOrder, completedAt == 0 ? Stopwatch.GetTimestamp() : completedAt, TimedOut: completedAt == 0);
    }
}

/// <summary>
/// What <see cref="SubscriptionReader.ReadAsync"/> saw. <see cref="TimedOut"/> means fewer than expected arrived
/// before the token fired; <see cref="CompletedAt"/> is then when reading stopped.
/// </summary>
internal readonly record struct ReadOutcome(long Received, long OutOfOrder, long CompletedAt, bool TimedOut);
