using Zaichik.Client;

namespace Zaichik.Tests.Crash;

/// <summary>
/// Publishes <c>g{generation}-p{publisher}-{sequence}</c> with up to <c>window</c> publishes in flight until the
/// server dies under it. Acks arrive in request order on one connection, so settling the oldest first loses no time.
/// </summary>
internal static class CrashPublisher
{
    /// <summary>Longest a single ack may take; far above a group commit, well below the client's request timeout.</summary>
    private static readonly TimeSpan AckDeadline = TimeSpan.FromSeconds(20);

    /// <param name="firstAcknowledged">Completed at the first durable ack, so the caller can kill while acks are flowing.</param>
    /// <param name="stop">Fires when the server should long have been killed; the publisher then stops and says so.</param>
    public static async Task<PublisherOutcome> RunAsync(
        ZaichikClient client, string topic, int generation, int publisher, int window, TaskCompletionSource firstAcknowledged, CancellationToken stop)
    {
        var acknowledged = new HashSet<int>();
        var notDurable = new List<int>();
        var inFlight = new Queue<(int Sequence, Task<PublishResult> Ack)>();
        var attempted = 0;
        string? unexpected = null;
        Exception? ending = null;

        // Let the caller's loop start the other publishers before this one saturates the socket.
        await Task.Yield();
        while (ending is null && unexpected is null)
        {
            if (stop.IsCancellationRequested)
            {
                unexpected = $"still publishing after the stop deadline ({attempted} attempted): was the server killed?";
                break;
            }

            var sequence = attempted++;
            try
            {
                inFlight.Enqueue((sequence, client.PublishAsync(topic, CrashPayload.Message(generation, publisher, sequence)).AsTask()));
            }
            catch (ZaichikException failure)
            {
                ending = failure;
                break;
            }

            if (inFlight.Count >= window)
            {
                (ending, unexpected) = await SettleAsync(inFlight.Dequeue(), acknowledged, notDurable);
                if (acknowledged.Count > 0)
                {
                    firstAcknowledged.TrySetResult();
                }
            }
        }

        // Whatever was still in flight either was acknowledged before the connection broke or failed with it.
        while (inFlight.TryDequeue(out var pending))
        {
            var (failure, problem) = await SettleAsync(pending, acknowledged, notDurable);
            ending ??= failure;
            unexpected ??= problem;
        }

        return new PublisherOutcome(
            generation, publisher, attempted, acknowledged, notDurable, ending is null ? "stopped" : $"{ending.GetType().Name}: {ending.Message}", unexpected);
    }

    private static async Task<(Exception? Ending, string? Unexpected)> SettleAsync(
        (int Sequence, Task<PublishResult> Ack) pending, HashSet<int> acknowledged, List<int> notDurable)
    {
        try
        {
            var result = await pending.Ack.WaitAsync(AckDeadline);
            if (result.Durable)
            {
                acknowledged.Add(pending.Sequence);
            }
            else
            {
                notDurable.Add(pending.Sequence);
            }

            return (null, null);
        }
        catch (ZaichikConnectionException lost)
        {
            return (lost, null);
        }
        catch (ZaichikException other)
        {
            // A server error or a client timeout while the server was alive is a failure in its own right.
            return (other, $"sequence {pending.Sequence} failed with {other.GetType().Name}: {other.Message}");
        }
        catch (TimeoutException)
        {
            return (null, $"sequence {pending.Sequence} got no answer and no connection failure within {AckDeadline.TotalSeconds} s");
        }
    }
}
