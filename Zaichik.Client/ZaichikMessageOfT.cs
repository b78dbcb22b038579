namespace Zaichik.Client;

/// <summary>A delivered message with its payload read as a <typeparamref name="T"/>.</summary>
public sealed class ZaichikMessage<T>
{
    internal ZaichikMessage(ZaichikMessage message, T value)
    {
        Message = message;
        Value = value;
    }

    /// <summary>The payload, deserialized.</summary>
    public T Value { get; }

    /// <summary>The message as delivered (payload bytes, key, timestamp).</summary>
    public ZaichikMessage Message { get; }

    /// <summary>The topic it was published to.</summary>
    public string Topic => Message.Topic;

    /// <summary>Its sequence in the topic; commit with it.</summary>
    public long Sequence => Message.Sequence;

    /// <summary>Its headers (empty when it has none).</summary>
    public ZaichikHeaders Headers => Message.Headers;

    /// <summary>How many times it was delivered, this time included (see <see cref="ZaichikMessage.DeliveryCount"/>).</summary>
    public int DeliveryCount => Message.DeliveryCount;

    /// <inheritdoc />
    public override string ToString() => Message.ToString();
}
