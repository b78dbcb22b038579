using Zaichik.Client.Internal;
using Zaichik.Protocol;

namespace Zaichik.Client;

public sealed partial class ZaichikClient
{
    /// <summary>
    /// Acknowledges every message delivered on this connection so far, across all subscriptions, so the server
    /// sends more. Commit has no answer: the task completes once the Commit is queued for sending.
    /// </summary>
    public ValueTask CommitAsync(CancellationToken cancellationToken = default)
    {
        foreach (var subscription in _subscriptions.Values)
        {
            subscription.NoteCommitted(subscription.LastReceived);
        }

        return SendCommitAsync(CommitFrame.All, cancellationToken);
    }

    /// <summary>
    /// Acknowledges <paramref name="message"/> and every earlier delivery of its topic; for a consumer group member,
    /// <paramref name="message"/> alone (members receive out of order: redeliveries, other members' keys).
    /// </summary>
    public ValueTask CommitAsync(ZaichikMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        return IsGroupMember(message.Topic) ? CommitOneAsync(message.Topic, message.Sequence, cancellationToken) : CommitAsync(message.Topic, message.Sequence, cancellationToken);
    }

    /// <summary>
    /// Acknowledges <paramref name="message"/> and every earlier delivery of its topic; for a consumer group member,
    /// <paramref name="message"/> alone.
    /// </summary>
    public ValueTask CommitAsync<T>(ZaichikMessage<T> message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        return IsGroupMember(message.Topic) ? CommitOneAsync(message.Topic, message.Sequence, cancellationToken) : CommitAsync(message.Topic, message.Sequence, cancellationToken);
    }

    /// <summary>
    /// Consumer group members and subscriptions with AckWait or MaxDeliver: acknowledges the one delivery <paramref name="sequence"/> of <paramref name="topic"/>, whichever
    /// order it came in. The group counts it done even if it was meanwhile redelivered to another member.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="sequence"/> is less than 1.</exception>
    /// <exception cref="InvalidOperationException">This client's subscription to <paramref name="topic"/> is not a group member.</exception>
    public ValueTask CommitOneAsync(string topic, long sequence, CancellationToken cancellationToken = default)
    {
        ValidateTopic(topic);
        ArgumentOutOfRangeException.ThrowIfLessThan(sequence, 1);
        if (!IsGroupMember(topic))
        {
            throw new InvalidOperationException($"only a consumer group member commits one sequence; the subscription to '{topic}' commits up to a sequence");
        }

        return SendCommitAsync(new CommitFrame(topic, sequence, Single: true), cancellationToken);
    }

    /// <summary>
    /// Consumer group members and subscriptions with AckWait or MaxDeliver: gives <paramref name="message"/> back; the group delivers it again (to any member, with its
    /// delivery count one higher) once <paramref name="delay"/> has passed. Counts towards MaxDeliver. A Nack of a message no
    /// longer in flight to this member (committed, timed out) is reported through <see cref="ServerError"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">This client's subscription to the message's topic is not a group member.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is negative or longer than about 49.7 days.</exception>
    public ValueTask NackAsync(ZaichikMessage message, TimeSpan delay = default, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (delay < TimeSpan.Zero || delay.TotalMilliseconds > uint.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(delay), delay, "a Nack delay must be zero to about 49.7 days");
        }

        if (!IsGroupMember(message.Topic))
        {
            throw new InvalidOperationException($"only a consumer group member gives a message back; the subscription to '{message.Topic}' is not one");
        }

        return SendCommitAsync(new NackFrame(message.Topic, message.Sequence, (uint)delay.TotalMilliseconds), cancellationToken);
    }

    private bool IsGroupMember(string topic) => _subscriptions.TryGetValue(topic, out var subscription) && subscription.Options.Redelivers;

    /// <summary>
    /// Acknowledges the deliveries of <paramref name="topic"/> up to and including <paramref name="sequence"/>. For a durable
    /// consumer this is also the position the server stores. Nothing is sent for a subscription with
    /// <see cref="AckPolicy.None"/>. A commit naming a topic this connection does not subscribe
    /// to is reported through <see cref="ServerError"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="sequence"/> is less than 1 (sequences start at 1).</exception>
    public ValueTask CommitAsync(string topic, long sequence, CancellationToken cancellationToken = default)
    {
        ValidateTopic(topic);
        ArgumentOutOfRangeException.ThrowIfLessThan(sequence, 1);
        if (_subscriptions.TryGetValue(topic, out var subscription))
        {
            if (subscription.Options.AckPolicy == AckPolicy.None)
            {
                // Nothing to commit: the server would answer InvalidArgument.
                return ValueTask.CompletedTask;
            }

            subscription.NoteCommitted(sequence);
        }

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

            var connection = await WaitForConnectionAsync(cancellationToken).ConfigureAwait(false);
            await connection.Sender.WaitForRoomAsync(cancellationToken).ConfigureAwait(false);
            connection.Sender.Write(new PingFrame(nonce));
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

    /// <summary>
    /// Sends a Commit on the current connection, waiting for one while the client reconnects. A Commit of a message
    /// delivered on an earlier connection still counts: it moves a durable consumer's position, and the client commits
    /// the redelivery of a message the application already committed by itself.
    /// </summary>
    private ValueTask SendCommitAsync(CommitFrame frame, CancellationToken cancellationToken) => SendAckFrameAsync(new AckLike(frame, null), cancellationToken);

    private ValueTask SendCommitAsync(NackFrame frame, CancellationToken cancellationToken) => SendAckFrameAsync(new AckLike(null, frame), cancellationToken);

    /// <summary>A Commit or a Nack: frames without a reply, sent on whatever connection is current.</summary>
    private readonly record struct AckLike(CommitFrame? Commit, NackFrame? Nack)
    {
        public void WriteTo(FrameSender sender)
        {
            if (Commit is { } commit)
            {
                sender.Write(commit);
            }
            else
            {
                sender.Write(Nack!.Value);
            }
        }
    }

    private ValueTask SendAckFrameAsync(AckLike frame, CancellationToken cancellationToken)
    {
        ThrowIfClosed();
        ClientConnection? connection;
        lock (_admission)
        {
            connection = _connection;
        }

        if (connection is not null && connection.Sender.HasRoom)
        {
            try
            {
                frame.WriteTo(connection.Sender);
                ZaichikTelemetry.Committed();
                return ValueTask.CompletedTask;
            }
            catch (ZaichikConnectionException) when (Options.Reconnect.Enabled && _closed is null && !_closing)
            {
                // Lost a moment ago: wait for the next connection below.
            }
        }

        return SendCommitSlowAsync(frame, cancellationToken);
    }

    private async ValueTask SendCommitSlowAsync(AckLike frame, CancellationToken cancellationToken)
    {
        while (true)
        {
            var connection = await WaitForConnectionAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await connection.Sender.WaitForRoomAsync(cancellationToken).ConfigureAwait(false);
                frame.WriteTo(connection.Sender);
                ZaichikTelemetry.Committed();
                return;
            }
            catch (ZaichikConnectionException) when (Options.Reconnect.Enabled && _closed is null && !_closing)
            {
                // Lost meanwhile: wait for the next connection.
            }
        }
    }
}
