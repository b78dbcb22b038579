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

    /// <summary>
    /// Completes once the server has handled every Commit this client sent before the call. For a durable consumer on an
    /// <see cref="Durability.Always"/> topic that is once the positions those Commits stored are on disk, so they survive
    /// a crash or a power cut of the server; on other topics positions are as durable as the topic's messages, written
    /// with its next commit. It sends a Ping, which the server answers only then.
    /// </summary>
    /// <exception cref="ZaichikServerException">CommitNotDurable: the server could not write the positions (they stay in its memory and are retried).</exception>
    /// <exception cref="ZaichikTimeoutException">No answer within <see cref="ZaichikClientOptions.RequestTimeout"/>.</exception>
    /// <exception cref="ZaichikConnectionException">The connection ended first.</exception>
    public async Task ConfirmCommitsAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfClosed();
        var nonce = Interlocked.Increment(ref _pingNonce);
        var answered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _confirmations[nonce] = answered;
        try
        {
            if (Volatile.Read(ref _closed) is { } closed)
            {
                throw closed();
            }

            await _sender.WaitForRoomAsync(cancellationToken).ConfigureAwait(false);
            _sender.Write(new PingFrame(nonce));
            await answered.Task.WaitAsync(Options.RequestTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new ZaichikTimeoutException($"the server did not confirm the Commits within {Options.RequestTimeout.TotalSeconds:0.###} s");
        }
        finally
        {
            _confirmations.TryRemove(nonce, out _);
        }
    }

    /// <summary>A Pong arrived: it confirms the Commits sent before its Ping, unless the server reported just before it that it could not write them.</summary>
    private void Confirmed(ulong nonce)
    {
        var failure = Interlocked.Exchange(ref _positionFailure, null);
        if (_confirmations.TryRemove(nonce, out var answered))
        {
            if (failure is null)
            {
                answered.TrySetResult();
            }
            else
            {
                answered.TrySetException(failure);
            }
        }
    }

    private void FailConfirmations(Exception reason)
    {
        foreach (var nonce in _confirmations.Keys)
        {
            if (_confirmations.TryRemove(nonce, out var answered))
            {
                answered.TrySetException(reason);
            }
        }
    }

    private async ValueTask SendCommitAsync(CommitFrame frame, CancellationToken cancellationToken)
    {
        ThrowIfClosed();
        await _sender.WaitForRoomAsync(cancellationToken).ConfigureAwait(false);
        _sender.Write(frame);
    }
}
