namespace Zaichik.Client;

/// <summary>
/// A subscription whose messages are deserialized as <typeparamref name="T"/>. Like <see cref="ZaichikSubscription"/>:
/// enumerate it to receive, dispose it to unsubscribe. A payload that cannot be deserialized ends the enumeration with
/// the serializer's exception; the message is not committed, so it comes again to the next subscription.
/// </summary>
public sealed class ZaichikSubscription<T> : IAsyncEnumerable<ZaichikMessage<T>>, IAsyncDisposable
{
    private readonly IZaichikSerializer<T> _serializer;

    internal ZaichikSubscription(ZaichikSubscription inner, IZaichikSerializer<T> serializer)
    {
        Inner = inner;
        _serializer = serializer;
    }

    /// <summary>The untyped subscription underneath.</summary>
    public ZaichikSubscription Inner { get; }

    /// <summary>The subscribed topic.</summary>
    public string Topic => Inner.Topic;

    /// <summary>The options it was created with.</summary>
    public SubscribeOptions Options => Inner.Options;

    /// <summary>See <see cref="ZaichikSubscription.StartSequence"/>.</summary>
    public long StartSequence => Inner.StartSequence;

    /// <inheritdoc />
    public async IAsyncEnumerator<ZaichikMessage<T>> GetAsyncEnumerator(CancellationToken cancellationToken = default)
    {
        await foreach (var message in Inner.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            yield return new ZaichikMessage<T>(message, _serializer.Deserialize(message.Payload));
        }
    }

    /// <summary>Unsubscribes; never throws.</summary>
    public ValueTask DisposeAsync() => Inner.DisposeAsync();

    /// <inheritdoc />
    public override string ToString() => Inner.ToString();
}
