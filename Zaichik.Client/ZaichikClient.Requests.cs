using Zaichik.Client.Internal;
using Zaichik.Protocol;

namespace Zaichik.Client;

public sealed partial class ZaichikClient
{
    private string? _lastValidTopic;

    /// <summary>Sends one request and awaits its answer. An Error answer throws <see cref="ZaichikServerException"/>.</summary>
    private async ValueTask<AckFrame> RequestAsync<TState>(
        FrameType type, string topic, TState state, Action<FrameSender, ulong, TState> write, CancellationToken cancellationToken)
    {
        var request = await SendRequestAsync(type, topic, state, write, cancellationToken).ConfigureAwait(false);
        return await request.AsValueTask().ConfigureAwait(false);
    }

    /// <summary>
    /// Waits for room in the send buffer and for a pending slot, registers the request under a fresh id and
    /// encodes its frame (<paramref name="write"/> builds it from the id and <paramref name="state"/>). Returns the
    /// pending request to await. When there is room and a slot, as there almost always is, this completes
    /// synchronously and allocates nothing.
    /// </summary>
    private ValueTask<PendingRequest> SendRequestAsync<TState>(
        FrameType type, string topic, TState state, Action<FrameSender, ulong, TState> write, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ThrowIfClosed();
        var room = _sender.WaitForRoomAsync(cancellationToken);
        if (!room.IsCompletedSuccessfully)
        {
            return SendWhenRoomAsync(room, type, topic, state, write, cancellationToken);
        }

        var begin = _requests.BeginAsync(type, topic, cancellationToken);
        return begin.IsCompletedSuccessfully
            ? ValueTask.FromResult(Write(begin.Result, state, write, cancellationToken))
            : SendWhenBegunAsync(begin, state, write, cancellationToken);
    }

    private async ValueTask<PendingRequest> SendWhenRoomAsync<TState>(
        ValueTask room, FrameType type, string topic, TState state, Action<FrameSender, ulong, TState> write, CancellationToken cancellationToken)
    {
        await room.ConfigureAwait(false);
        var request = await _requests.BeginAsync(type, topic, cancellationToken).ConfigureAwait(false);
        return Write(request, state, write, cancellationToken);
    }

    /// <summary>Waits for the slot already asked for: asking again would leave the first waiter holding a slot nobody uses.</summary>
    private async ValueTask<PendingRequest> SendWhenBegunAsync<TState>(
        ValueTask<PendingRequest> begin, TState state, Action<FrameSender, ulong, TState> write, CancellationToken cancellationToken)
    {
        var request = await begin.ConfigureAwait(false);
        return Write(request, state, write, cancellationToken);
    }

    private PendingRequest Write<TState>(PendingRequest request, TState state, Action<FrameSender, ulong, TState> write, CancellationToken cancellationToken)
    {
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
        return request;
    }

    private void ValidateTopic(string topic, string parameterName = "topic")
    {
        // Publishers repeat one topic string; checking it once saves a scan of every character per publish.
        if (ReferenceEquals(topic, Volatile.Read(ref _lastValidTopic)))
        {
            return;
        }

        if (TopicName.Validate(topic) is { } problem)
        {
            throw new ArgumentException(problem, parameterName);
        }

        Volatile.Write(ref _lastValidTopic, topic);
    }
}
