using Zaichik.Protocol;

namespace Zaichik.Server.Requests;

/// <summary>Ping: its Pong is a barrier for the durable positions of earlier Commits.</summary>
internal sealed partial class ConnectionRequests
{
    /// <summary>
    /// Answers a Ping, which is also how a client learns that its Commits are durable: the Pong is held until every durable
    /// consumer position this connection's Commits moved on an Always topic is fsynced (the topic's next group flush).
    /// </summary>
    public void Ping(ulong nonce)
    {
        List<Task>? writing = null;
        foreach (var subscription in _subscriptions.Values)
        {
            if ((subscription.DurableName is not null || subscription.GroupName is not null) && subscription.WhenPositionDurableAsync() is { IsCompletedSuccessfully: false } pending)
            {
                (writing ??= []).Add(pending);
            }
        }

        if (writing is null)
        {
            FrameWriter.Write(_replies, new PongFrame(nonce));
        }
        else
        {
            _pendingPongs.Add(new PendingPong(Task.WhenAll(writing), nonce));
        }
    }
}
