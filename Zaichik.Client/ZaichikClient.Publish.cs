using System.Text;
using Zaichik.Client.Internal;
using Zaichik.Protocol;

namespace Zaichik.Client;

public sealed partial class ZaichikClient
{
    /// <summary>
    /// Publishes one message and completes when the server has stored it (or dropped it as a duplicate within the
    /// topic's compaction window). Many publishes may be in flight at once; they are batched onto the socket.
    /// </summary>
    /// <param name="topic">The topic to publish to.</param>
    /// <param name="payload">The message body; it must not change until the returned task completes.</param>
    /// <param name="key">The compaction key, or null for an unkeyed message.</param>
    /// <param name="cancellationToken">Stops waiting; a publish already sent may still be stored.</param>
    /// <exception cref="ArgumentException">The topic name is invalid, or the key or message is too large.</exception>
    /// <exception cref="ZaichikServerException">The server refused the message.</exception>
    /// <exception cref="ZaichikTimeoutException">No answer within <see cref="ZaichikClientOptions.RequestTimeout"/>.</exception>
    /// <exception cref="ZaichikConnectionException">The connection was lost or closed first.</exception>
    public ValueTask<PublishResult> PublishAsync(
        string topic, ReadOnlyMemory<byte> payload, ReadOnlyMemory<byte>? key = null, CancellationToken cancellationToken = default)
    {
        ValidateTopic(topic);
        ValidateMessageSize(topic, key, payload);
        var sending = SendRequestAsync(
            FrameType.Publish,
            topic,
            (topic, key, payload),
            static (sender, id, message) => sender.Write(new PublishFrame(id, message.topic, message.key, message.payload)),
            cancellationToken);

        // The common case awaits the pooled request directly: no state machine, no task.
        return sending.IsCompletedSuccessfully ? sending.Result.AsPublishResult() : AwaitPublishAsync(sending);
    }

    /// <summary>Publishes a UTF-8 text message, optionally with a UTF-8 text key. See <see cref="PublishAsync(string, ReadOnlyMemory{byte}, ReadOnlyMemory{byte}?, CancellationToken)"/>.</summary>
    public ValueTask<PublishResult> PublishAsync(string topic, string payload, string? key = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(payload);
        // The cast matters: a null byte[] converts to an empty (present) ReadOnlyMemory, not to null.
        var keyBytes = key is null ? null : (ReadOnlyMemory<byte>?)Encoding.UTF8.GetBytes(key);
        return PublishAsync(topic, Encoding.UTF8.GetBytes(payload), keyBytes, cancellationToken);
    }

    private static async ValueTask<PublishResult> AwaitPublishAsync(ValueTask<PendingRequest> sending)
    {
        var request = await sending.ConfigureAwait(false);
        return await request.AsPublishResult().ConfigureAwait(false);
    }

    private void ValidateMessageSize(string topic, ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte> payload)
    {
        var keyLength = key?.Length ?? 0;
        if (keyLength > ProtocolLimits.MaxKeyBytes)
        {
            throw new ArgumentException($"key of {keyLength} bytes exceeds the limit of {ProtocolLimits.MaxKeyBytes}", nameof(key));
        }

        // Type, request id, topic (u16 length + ASCII), key flag (+ u16 length + bytes), payload (u32 length + bytes).
        var frameSize = 1L + 8 + 2 + topic.Length + 1 + (key.HasValue ? 2 + keyLength : 0) + 4 + payload.Length;
        if (frameSize > Options.MaxFrameSize)
        {
            throw new ArgumentException(
                $"message of {payload.Length} payload bytes makes a frame of {frameSize} bytes; MaxFrameSize is {Options.MaxFrameSize}",
                nameof(payload));
        }
    }
}
