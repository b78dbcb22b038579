using System.Runtime.CompilerServices;
using Zaichik.Client.Internal;
using Zaichik.Protocol;

namespace Zaichik.Client;

public sealed partial class ZaichikClient
{
    /// <summary>
    /// Sends one request and awaits its answer: waits for a pending slot and for room in the send buffer, registers
    /// the request under a fresh id, encodes the frame (<paramref name="write"/> builds it from the id and
    /// <paramref name="state"/>), then awaits the Ack. An Error answer throws <see cref="ZaichikServerException"/>.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<AckFrame> RequestAsync<TState>(
        FrameType type, string topic, TState state, Action<FrameSender, ulong, TState> write, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ThrowIfClosed();
        await _sender.WaitForRoomAsync(cancellationToken).ConfigureAwait(false);
        var request = await _requests.BeginAsync(type, topic, cancellationToken).ConfigureAwait(false);
        try
        {
            write(_sender, request.Id, state);
        }
        catch
        {
            _requests.Abandon(request);
            throw;
        }

        request.WatchCancellation(cancellationToken);
        return await request.AsValueTask().ConfigureAwait(false);
    }

    private static void ValidateTopic(string topic, string parameterName = "topic")
    {
        if (TopicName.Validate(topic) is { } problem)
        {
            throw new ArgumentException(problem, parameterName);
        }
    }
}
