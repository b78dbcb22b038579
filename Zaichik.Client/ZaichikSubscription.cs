using System.Threading.Channels;
using Zaichik.Protocol;

namespace Zaichik.Client;

/// <summary>
/// A live subscription to one topic. Enumerate it (<c>await foreach</c>) to receive its messages in sequence order;
/// dispose it to unsubscribe. Enumeration ends when the subscription is unsubscribed or the client disposed,
/// ends quietly when the enumeration's cancellation token fires, and throws <see cref="ZaichikConnectionException"/>
/// (after the messages already received) when the connection is lost. Enumerate it from one consumer at a time.
/// </summary>
public sealed class ZaichikSubscription : IAsyncEnumerable<ZaichikMessage>, IAsyncDisposable
{
    private readonly ZaichikClient _client;

    // Unbounded because the server bounds what it sends by the prefetch: the read loop must never wait on a consumer.
    private readonly Channel<ZaichikMessage> _messages =
        Channel.CreateUnbounded<ZaichikMessage>(new UnboundedChannelOptions { SingleWriter = false, SingleReader = false });

    private volatile bool _sent;
    private volatile bool _acknowledged;
    private volatile bool _releasing;
    private long _lastReceived;
    private long _committedUpTo;

    internal ZaichikSubscription(ZaichikClient client, string topic, SubscribeOptions options)
    {
        _client = client;
        Topic = topic;
        Options = options;
    }

    /// <summary>The subscribed topic.</summary>
    public string Topic { get; }

    /// <summary>The options it was created with.</summary>
    public SubscribeOptions Options { get; }

    /// <summary>
    /// The sequence this subscription starts at, as the server's Subscribe Ack reported it: that of the first message it
    /// can deliver. For <see cref="StartPosition.Latest"/>, and whenever nothing is stored yet at or after the
    /// start point, it is the next sequence the topic will assign, so that message may not exist yet; otherwise it is the
    /// first stored message at or after the start point (for a durable consumer that resumes, the first after its last
    /// commit). A first delivery with a higher sequence means the messages in between expired or were lost before they
    /// could be sent. -1 if the Ack carried no sequence.
    /// </summary>
    public long StartSequence { get; private set; } = -1;

    internal bool WasSent => _sent;

    internal bool IsAcknowledged => _acknowledged;

    internal bool IsReleasing => _releasing;

    /// <summary>The sequence of the last message this subscription received, on any connection; 0 before the first.</summary>
    internal long LastReceived => Volatile.Read(ref _lastReceived);

    /// <summary>The highest sequence the application committed on this topic, on any connection.</summary>
    internal long CommittedUpTo => Volatile.Read(ref _committedUpTo);

    /// <summary>
    /// Yields delivered messages in order. With <see cref="SubscribeOptions.AutoCommit"/>, each message is committed
    /// when the next one is asked for. Cancelling <paramref name="cancellationToken"/> ends the enumeration without an exception.
    /// </summary>
    public async IAsyncEnumerator<ZaichikMessage> GetAsyncEnumerator(CancellationToken cancellationToken = default)
    {
        var reader = _messages.Reader;
        ZaichikMessage? toCommit = null;
        while (true)
        {
            if (toCommit is not null)
            {
                await _client.CommitAsync(toCommit, CancellationToken.None).ConfigureAwait(false);
                toCommit = null;
            }

            ZaichikMessage? message;
            while (!reader.TryRead(out message))
            {
                if (!await WaitToReadAsync(reader, cancellationToken).ConfigureAwait(false))
                {
                    yield break;
                }
            }

            if (Options.AutoCommit && Options.AckPolicy == AckPolicy.Explicit)
            {
                toCommit = message;
            }

            yield return message;
        }
    }

    /// <summary>Unsubscribes (when still connected and subscribed) and ends the enumeration. Never throws.</summary>
    public ValueTask DisposeAsync() => _client.ReleaseAsync(this);

    /// <inheritdoc />
    public override string ToString() => $"subscription to {Topic}";

    internal void MarkSent() => _sent = true;

    /// <summary>Records the Subscribe Ack's sequence; called before the subscription is handed to the caller.</summary>
    internal void Acknowledged(in AckFrame ack)
    {
        StartSequence = ack.Sequence ?? -1;
        _acknowledged = true;
    }

    internal void MarkReleasing() => _releasing = true;

    /// <summary>
    /// Where a restored subscription resumes: right after the last message it received, or where it first started when
    /// it received none. Null for a durable consumer, which the server resumes after its last Commit.
    /// </summary>
    internal long? ResumePoint()
    {
        // A durable consumer resumes where the server keeps it. Without acks that is after what was sent, which may be
        // past what arrived: the expected start lets a gap be reported.
        if ((Options.DurableName is not null && Options.AckPolicy == AckPolicy.Explicit) || Options.Group is not null)
        {
            return null;
        }

        var last = LastReceived;
        return last > 0 ? last + 1 : StartSequence >= 1 ? StartSequence : null;
    }

    internal void NoteCommitted(long sequence)
    {
        var current = Volatile.Read(ref _committedUpTo);
        while (sequence > current)
        {
            var seen = Interlocked.CompareExchange(ref _committedUpTo, sequence, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    /// <summary>
    /// Hands a message to the enumeration. False for a message it already received on an earlier connection (a durable
    /// consumer's redelivery after a reconnect), which is dropped: the application has it already.
    /// </summary>
    internal bool Deliver(ZaichikMessage message)
    {
        // Only the read loop of the current connection delivers, so this needs no lock. A group member's redeliveries come
        // out of order and are new to this member (another may have had them): every one is handed on.
        if (!Options.Redelivers && message.Sequence <= _lastReceived)
        {
            return false;
        }

        Volatile.Write(ref _lastReceived, Math.Max(_lastReceived, message.Sequence));
        _messages.Writer.TryWrite(message);
        return true;
    }

    internal void Complete(Exception? error) => _messages.Writer.TryComplete(error);

    /// <summary>False when the channel completed or the token fired; throws the connection's failure.</summary>
    private static async ValueTask<bool> WaitToReadAsync(ChannelReader<ZaichikMessage> reader, CancellationToken cancellationToken)
    {
        try
        {
            return await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }
}
