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
        return CommitAsync(message.Topic, message.Sequence, cancellationToken);
    }

    /// <summary>
    /// Acknowledges the deliveries of <paramref name="topic"/> up to and including <paramref name="sequence"/>. For a durable
    /// consumer this is also the position the server stores. A commit naming a topic this connection does not subscribe
    /// to is reported through <see cref="ServerError"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="sequence"/> is less than 1 (sequences start at 1).</exception>
    public ValueTask CommitAsync(string topic, long sequence, CancellationToken cancellationToken = default)
    {
        ValidateTopic(topic);
        ArgumentOutOfRangeException.ThrowIfLessThan(sequence, 1);
        return SendCommitAsync(new CommitFrame(topic, sequence), cancellationToken);
    }

    private async ValueTask SendCommitAsync(CommitFrame frame, CancellationToken cancellationToken)
    {
        ThrowIfClosed();
        await _sender.WaitForRoomAsync(cancellationToken).ConfigureAwait(false);
        _sender.Write(frame);
    }
}
