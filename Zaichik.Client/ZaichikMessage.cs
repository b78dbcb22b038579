using System.Diagnostics;
using System.Text;
using Zaichik.Protocol;

namespace Zaichik.Client;

/// <summary>A message delivered to a subscription. Its key and payload are the client's own copies.</summary>
public sealed class ZaichikMessage
{
    private ZaichikHeaders? _headers;

    /// <summary>Creates a message; the client does so for every delivery (useful for tests of consumer code).</summary>
    public ZaichikMessage(
        string topic, long sequence, DateTimeOffset timestamp, ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte> payload, ZaichikHeaders? headers = null, int deliveryCount = 1)
    {
        DeliveryCount = deliveryCount;
        Topic = topic;
        Sequence = sequence;
        Timestamp = timestamp;
        Key = key;
        Payload = payload;
        _headers = headers;
    }

    /// <summary>The topic it was published to.</summary>
    public string Topic { get; }

    /// <summary>
    /// Its sequence in the topic: 1 for the topic's first message and one more for each message stored after it, never
    /// reused. Sequences have gaps only where the server lost messages to damaged storage, so the topic's last sequence
    /// minus the one committed is the consumer's lag in messages. Commit with it.
    /// </summary>
    public long Sequence { get; }

    /// <summary>
    /// How many times the server has delivered this message to the subscription's consumer (for a consumer group, to any of
    /// its members), this delivery included: 1 the first time, more for a redelivery after an ack timeout, a Nack or a member
    /// leaving. Always 1 outside a group.
    /// </summary>
    public int DeliveryCount { get; }

    /// <summary>When the server accepted it.</summary>
    public DateTimeOffset Timestamp { get; }

    /// <summary>Its compaction key, or null for an unkeyed message.</summary>
    public ReadOnlyMemory<byte>? Key { get; }

    /// <summary>The message body.</summary>
    public ReadOnlyMemory<byte> Payload { get; }

    /// <summary>Its headers, as published (empty when it has none).</summary>
    public ZaichikHeaders Headers => _headers ??= new ZaichikHeaders();

    /// <summary>
    /// The trace context of the publisher's span, from the <c>traceparent</c> and <c>tracestate</c> headers, or default
    /// when it carries none: start the span that processes the message with it as parent to continue the trace.
    /// </summary>
    public ActivityContext ParentContext
    {
        get
        {
            if (_headers is not { Count: > 0 } || !_headers.TryGetText(ZaichikTelemetry.TraceParentHeader, out var traceParent))
            {
                return default;
            }

            _headers.TryGetText(ZaichikTelemetry.TraceStateHeader, out var traceState);
            return ActivityContext.TryParse(traceParent, traceState.Length == 0 ? null : traceState, isRemote: true, out var context) ? context : default;
        }
    }

    /// <summary>The key decoded as UTF-8, or null for an unkeyed message. Decodes on every call.</summary>
    public string? KeyText => Key is { } key ? Encoding.UTF8.GetString(key.Span) : null;

    /// <summary>The payload decoded as UTF-8. Decodes on every call.</summary>
    public string PayloadText => Encoding.UTF8.GetString(Payload.Span);

    /// <inheritdoc />
    public override string ToString() => $"{Topic}@{Sequence}";

    /// <summary>Copies a decoded frame out of the read buffer, key, payload and headers sharing one array.</summary>
    internal static ZaichikMessage CopyOf(in MessageFrame frame)
    {
        var keyLength = frame.Key?.Length ?? 0;
        var payloadLength = frame.Payload.Length;
        var bytes = new byte[keyLength + payloadLength + frame.Headers.Length];
        ReadOnlyMemory<byte>? key = null;
        if (frame.Key is { } frameKey)
        {
            frameKey.Span.CopyTo(bytes);
            key = bytes.AsMemory(0, keyLength);
        }

        frame.Payload.Span.CopyTo(bytes.AsSpan(keyLength));
        ZaichikHeaders? headers = null;
        if (!frame.Headers.IsEmpty)
        {
            frame.Headers.Span.CopyTo(bytes.AsSpan(keyLength + payloadLength));
            headers = ZaichikHeaders.FromBlock(bytes.AsMemory(keyLength + payloadLength));
        }

        var timestamp = DateTimeOffset.FromUnixTimeMilliseconds(frame.TimestampMs);
        return new ZaichikMessage(
            frame.Topic, frame.Sequence, timestamp, key, bytes.AsMemory(keyLength, payloadLength), headers, (int)Math.Min(frame.DeliveryCount, int.MaxValue));
    }
}
