using Zaichik.Protocol;

namespace Zaichik.Client;

public sealed partial class ZaichikClient
{
    /// <summary>
    /// Acknowledges every message delivered on this connection so far, across all subscriptions, so the server
    /// sends more. Commit has no answer: the task completes once the Commit is queued for sending.
    /// </summary>
    public ValueTask CommitAsync(CancellationToken cancellationToken = default) => SendCommitAsync(CommitFrame.All, cancellationToken);

    /// <summary>Acknowledges <paramref name="message"/> and every earlier delivery of its topic.</summary>
    public ValueTask CommitAsync(ZaichikMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        return CommitAsync(message.Topic, message.Offset, cancellationToken);
    }

    /// <summary>
    /// Acknowledges the deliveries of <paramref name="topic"/> up to and including <paramref name="offset"/>.
    /// A commit naming a topic this connection does not subscribe to is reported through <see cref="ServerError"/>.
    /// </summary>
    public ValueTask CommitAsync(string topic, long offset, CancellationToken cancellationToken = default)
    {
        ValidateTopic(topic);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        return SendCommitAsync(new CommitFrame(topic, offset), cancellationToken);
    }

    private async ValueTask SendCommitAsync(CommitFrame frame, CancellationToken cancellationToken)
    {
        ThrowIfClosed();
        await _sender.WaitForRoomAsync(cancellationToken).ConfigureAwait(false);
        _sender.Write(frame);
    }
}
