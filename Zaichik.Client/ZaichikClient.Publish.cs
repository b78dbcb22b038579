using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;
using Zaichik.Client.Internal;
using Zaichik.Protocol;

namespace Zaichik.Client;

public sealed partial class ZaichikClient
{
    /// <summary>
    /// Publishes one message and completes when the server has stored it (or dropped it as a duplicate within the
    /// topic's compaction window). Many publishes may be in flight at once; they are batched onto the socket. While the
    /// client reconnects the publish waits; one whose Ack was lost to a disconnect is sent again and, with
    /// <see cref="ZaichikClientOptions.Idempotence"/>, stored at most once.
    /// </summary>
    /// <param name="topic">The topic to publish to.</param>
    /// <param name="payload">The message body; it must not change until the returned task completes.</param>
    /// <param name="key">The compaction key, or null for an unkeyed message.</param>
    /// <param name="cancellationToken">Stops waiting; a publish already sent may still be stored.</param>
    /// <exception cref="ArgumentException">The topic name is invalid, or the key or message is too large.</exception>
    /// <exception cref="ZaichikServerException">The server refused the message.</exception>
    /// <exception cref="ZaichikTimeoutException">No answer within <see cref="ZaichikClientOptions.RequestTimeout"/>.</exception>
    /// <exception cref="ZaichikConnectionException">The client was closed, or gave up reconnecting, first.</exception>
    [OverloadResolutionPriority(1)]
    public ValueTask<PublishResult> PublishAsync(
        string topic, ReadOnlyMemory<byte> payload, ReadOnlyMemory<byte>? key = null, CancellationToken cancellationToken = default) =>
        PublishAsync(topic, payload, key, headers: null, cancellationToken);

    /// <summary>
    /// Publishes one message with headers. See <see cref="PublishAsync(string, ReadOnlyMemory{byte}, ReadOnlyMemory{byte}?, CancellationToken)"/>.
    /// When a trace is active (an <see cref="Activity"/>), the publish span's context travels in the
    /// <c>traceparent</c>/<c>tracestate</c> headers, so a consumer's span continues the trace.
    /// </summary>
    /// <exception cref="ArgumentException">The headers are larger than <see cref="ZaichikClientOptions.MaxHeadersSize"/>.</exception>
    [OverloadResolutionPriority(1)]
    public ValueTask<PublishResult> PublishAsync(
        string topic, ReadOnlyMemory<byte> payload, ReadOnlyMemory<byte>? key, ZaichikHeaders? headers, CancellationToken cancellationToken = default)
    {
        ValidateTopic(topic);
        var activity = ZaichikTelemetry.StartPublish(topic);
        if ((activity ?? Activity.Current) is { } trace)
        {
            headers = WithTraceContext(headers, trace);
        }

        var block = headers is { Count: > 0 } ? headers.ToBlock() : default;
        ValidateMessageSize(topic, key, payload, block.Length);
        var sending = SendRequestAsync(FrameType.Publish, topic, new PublishFrame(0, topic, key, payload, 0, block), null, cancellationToken);
        if (activity is not null)
        {
            return TracePublishAsync(sending, activity);
        }

        // The common case awaits the pooled request directly: no state machine, no task.
        return sending.IsCompletedSuccessfully ? sending.Result.AsPublishResult() : AwaitPublishAsync(sending);
    }

    /// <summary>
    /// Publishes one message keyed by a byte array. See <see cref="PublishAsync(string, ReadOnlyMemory{byte}, ReadOnlyMemory{byte}?, CancellationToken)"/>.
    /// A null array publishes an unkeyed message. (Converted to <see cref="ReadOnlyMemory{T}"/>, a null array becomes an
    /// empty key, which a compaction window treats as a key; this overload is here so that it does not.) An empty
    /// array is the empty key.
    /// </summary>
    [OverloadResolutionPriority(2)]
    public ValueTask<PublishResult> PublishAsync(string topic, ReadOnlyMemory<byte> payload, byte[]? key, CancellationToken cancellationToken = default) =>
        PublishAsync(topic, payload, key, headers: null, cancellationToken);

    /// <summary>Publishes one message keyed by a byte array, with headers: a null array publishes an unkeyed message. See <see cref="PublishAsync(string, ReadOnlyMemory{byte}, byte[], CancellationToken)"/>.</summary>
    [OverloadResolutionPriority(2)]
    public ValueTask<PublishResult> PublishAsync(string topic, ReadOnlyMemory<byte> payload, byte[]? key, ZaichikHeaders? headers, CancellationToken cancellationToken = default) =>
        PublishAsync(topic, payload, key is null ? (ReadOnlyMemory<byte>?)null : new ReadOnlyMemory<byte>(key), headers, cancellationToken);

    /// <summary>Publishes a UTF-8 text message, optionally with a UTF-8 text key. See <see cref="PublishAsync(string, ReadOnlyMemory{byte}, ReadOnlyMemory{byte}?, CancellationToken)"/>.</summary>
    [OverloadResolutionPriority(1)]
    public ValueTask<PublishResult> PublishAsync(string topic, string payload, string? key = null, CancellationToken cancellationToken = default) =>
        PublishAsync(topic, payload, key, headers: null, cancellationToken);

    /// <summary>Publishes a UTF-8 text message with headers.</summary>
    [OverloadResolutionPriority(1)]
    public ValueTask<PublishResult> PublishAsync(string topic, string payload, string? key, ZaichikHeaders? headers, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(payload);
        return PublishAsync(topic, Encoding.UTF8.GetBytes(payload), KeyBytes(key), headers, cancellationToken);
    }

    /// <summary>
    /// Publishes <paramref name="value"/> as the payload, written by <paramref name="serializer"/> (default
    /// <see cref="ZaichikJsonSerializer{T}.Default"/>, JSON). Byte arrays, byte memory and strings take the overloads
    /// that send them as they are (strings as UTF-8), which the compiler prefers. See
    /// <see cref="PublishAsync(string, ReadOnlyMemory{byte}, ReadOnlyMemory{byte}?, ZaichikHeaders?, CancellationToken)"/>.
    /// </summary>
    public ValueTask<PublishResult> PublishAsync<T>(
        string topic, T value, string? key = null, ZaichikHeaders? headers = null, IZaichikSerializer<T>? serializer = null, CancellationToken cancellationToken = default)
    {
        ReadOnlyMemory<byte> payload;
        if (value is byte[] array)
        {
            payload = array;
        }
        else if (value is ReadOnlyMemory<byte> memory)
        {
            payload = memory;
        }
        else if (value is Memory<byte> writable)
        {
            payload = writable;
        }
        else
        {
            var output = new ArrayBufferWriter<byte>();
            (serializer ?? ZaichikJsonSerializer<T>.Default).Serialize(value, output);
            payload = output.WrittenMemory;
        }

        return PublishAsync(topic, payload, KeyBytes(key), headers, cancellationToken);
    }

    // The cast matters: a null byte[] converts to an empty (present) ReadOnlyMemory, not to null.
    private static ReadOnlyMemory<byte>? KeyBytes(string? key) => key is null ? null : (ReadOnlyMemory<byte>?)Encoding.UTF8.GetBytes(key);

    private static ZaichikHeaders WithTraceContext(ZaichikHeaders? headers, Activity trace)
    {
        // A copy, so that a caller who reuses one set of headers never sees another publish's trace in it.
        var traced = new ZaichikHeaders();
        if (headers is not null)
        {
            foreach (var header in headers)
            {
                if (header.Key is not (ZaichikTelemetry.TraceParentHeader or ZaichikTelemetry.TraceStateHeader))
                {
                    traced.Add(header);
                }
            }
        }

        DistributedContextPropagator.Current.Inject(trace, traced, static (carrier, name, value) =>
        {
            if (value is not null && name is ZaichikTelemetry.TraceParentHeader or ZaichikTelemetry.TraceStateHeader)
            {
                ((ZaichikHeaders)carrier!).Set(name, value);
            }
        });
        return traced;
    }

    private static async ValueTask<PublishResult> AwaitPublishAsync(ValueTask<PendingRequest> sending)
    {
        var request = await sending.ConfigureAwait(false);
        return await request.AsPublishResult().ConfigureAwait(false);
    }

    private static async ValueTask<PublishResult> TracePublishAsync(ValueTask<PendingRequest> sending, Activity activity)
    {
        try
        {
            var request = await sending.ConfigureAwait(false);
            var result = await request.AsPublishResult().ConfigureAwait(false);
            activity.SetTag("zaichik.sequence", result.Sequence);
            if (result.Duplicate)
            {
                activity.SetTag("zaichik.duplicate", true);
            }

            return result;
        }
        catch (Exception e)
        {
            activity.SetStatus(ActivityStatusCode.Error, e.Message);
            throw;
        }
        finally
        {
            activity.Dispose();
        }
    }

    private void ValidateMessageSize(string topic, ReadOnlyMemory<byte>? key, ReadOnlyMemory<byte> payload, int headersLength)
    {
        var keyLength = key?.Length ?? 0;
        if (keyLength > ProtocolLimits.MaxKeyBytes)
        {
            throw new ArgumentException($"key of {keyLength} bytes exceeds the limit of {ProtocolLimits.MaxKeyBytes}", nameof(key));
        }

        if (headersLength > Options.MaxHeadersSize)
        {
            throw new ArgumentException($"headers of {headersLength} bytes exceed MaxHeadersSize ({Options.MaxHeadersSize})", "headers");
        }

        // Type, request id, topic (u16 length + ASCII), key flag (+ u16 length + bytes), payload (u32 length + bytes),
        // producer sequence, headers (u32 length + bytes).
        var frameSize = 1L + 8 + 2 + topic.Length + 1 + (key.HasValue ? 2 + keyLength : 0) + 4 + payload.Length + 8 + 4 + headersLength;
        if (frameSize > Options.MaxFrameSize)
        {
            throw new ArgumentException(
                $"message of {payload.Length} payload bytes makes a frame of {frameSize} bytes; MaxFrameSize is {Options.MaxFrameSize}",
                nameof(payload));
        }
    }
}
