using System.Text;
using Zaichik.Protocol;

namespace Zaichik.Client;

/// <summary>A message delivered to a subscription. Its key and payload are the client's own copies.</summary>
public sealed class ZaichikMessage
{
    /// <summary>Creates a message; the client does so for every delivery (useful for tests of consumer code).</summary>
    public ZaichikMessage(string topic, long sequence, DateTimeOffset timestamp, ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte> payload)
    {
        Topic = topic;
        Sequence = sequence;
        Timestamp = timestamp;
        Key = key;
        Payload = payload;
    }

    /// <summary>The topic it was published to.</summary>
    public string Topic { get; }

    /// <summary>
    /// Its sequence in the topic: 1 for the topic's first message and one more for each message stored after it, never
    /// reused. Sequences have gaps only where the server lost messages to damaged storage, so the topic's last sequence
    /// minus the one committed is the consumer's lag in messages. Commit with it.
    /// </summary>
    public long Sequence { get; }

    /// <summary>When the server accepted it.</summary>
    public DateTimeOffset Timestamp { get; }

    /// <summary>Its compaction key, or null for an unkeyed message.</summary>
    public ReadOnlyMemory<byte>? Key { get; }

    /// <summary>The message body.</summary>
    public ReadOnlyMemory<byte> Payload { get; }

    /// <summary>The key decoded as UTF-8, or null for an unkeyed message. Decodes on every call.</summary>
    public string? KeyText => Key is { } key ? Encoding.UTF8.GetString(key.Span) : null;

    /// <summary>The payload decoded as UTF-8. Decodes on every call.</summary>
    public string PayloadText => Encoding.UTF8.GetString(Payload.Span);

    /// <inheritdoc />
    public override string ToString() => $"{Topic}@{Sequence}";

    /// <summary>Copies a decoded frame out of the read buffer, key and payload sharing one array.</summary>
    internal static ZaichikMessage CopyOf(in MessageFrame frame)
    {
        var keyLength = frame.Key?.Length ?? 0;
        var bytes = new byte[keyLength + frame.Payload.Length];
        ReadOnlyMemory<byte>? key = null;
        if (frame.Key is { } frameKey)
        {
            frameKey.Span.CopyTo(bytes);
            key = bytes.AsMemory(0, keyLength);
        }

        frame.Payload.Span.CopyTo(bytes.AsSpan(keyLength));
        var timestamp = DateTimeOffset.FromUnixTimeMilliseconds(frame.TimestampMs);
        return new ZaichikMessage(frame.Topic, frame.Sequence, timestamp, key, bytes.AsMemory(keyLength));
    }
}
