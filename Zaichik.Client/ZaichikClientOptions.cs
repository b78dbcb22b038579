using Zaichik.Protocol;

namespace Zaichik.Client;

/// <summary>Limits and timings of one client connection. Start from <see cref="Default"/> and change with <c>with</c>.</summary>
public sealed record ZaichikClientOptions
{
    /// <summary>The defaults documented on each property.</summary>
    public static ZaichikClientOptions Default { get; } = new();

    /// <summary>
    /// The largest frame body, in bytes, the client sends or accepts; publishes that would exceed it are refused
    /// before sending. Default <see cref="ProtocolLimits.DefaultMaxFrameSize"/>, at least 1024.
    /// </summary>
    public int MaxFrameSize { get; init; } = ProtocolLimits.DefaultMaxFrameSize;

    /// <summary>How long connecting and the Hello handshake may take. Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a request (create topic, publish, subscribe, unsubscribe) may wait for its answer before it fails
    /// with <see cref="ZaichikTimeoutException"/>. Default 30 s; <see cref="Timeout.InfiniteTimeSpan"/> waits forever.
    /// </summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long disposing waits for the server to answer what is in flight and close the connection after Close.
    /// Default 5 s.
    /// </summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How many requests may be unanswered at once; further requests wait for an answer to free a slot, which bounds
    /// the memory a fast publisher can pin. Default 10,000.
    /// </summary>
    public int MaxPendingRequests { get; init; } = 10_000;

    /// <summary>
    /// Bytes of encoded frames that may wait for the socket. Frames are batched into one send; once this many are
    /// waiting, callers wait until the sender takes them. Default 1 MiB, at least 4 KiB.
    /// </summary>
    public int SendBufferSize { get; init; } = 1024 * 1024;

    /// <summary>Size of each buffer the connection reads into. Default 64 KiB, at least 4 KiB.</summary>
    public int ReceiveBufferSize { get; init; } = 64 * 1024;

    internal void Validate()
    {
        if (MaxFrameSize < 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxFrameSize), MaxFrameSize, "MaxFrameSize must be at least 1024 bytes");
        }

        RequirePositive(ConnectTimeout, nameof(ConnectTimeout));
        RequirePositive(CloseTimeout, nameof(CloseTimeout));
        if (RequestTimeout != Timeout.InfiniteTimeSpan)
        {
            RequirePositive(RequestTimeout, nameof(RequestTimeout));
        }

        if (MaxPendingRequests < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxPendingRequests), MaxPendingRequests, "MaxPendingRequests must be at least 1");
        }

        if (SendBufferSize < 4096)
        {
            throw new ArgumentOutOfRangeException(nameof(SendBufferSize), SendBufferSize, "SendBufferSize must be at least 4096 bytes");
        }

        if (ReceiveBufferSize < 4096)
        {
            throw new ArgumentOutOfRangeException(nameof(ReceiveBufferSize), ReceiveBufferSize, "ReceiveBufferSize must be at least 4096 bytes");
        }
    }

    private static void RequirePositive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero || value.TotalMilliseconds > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive and at most {int.MaxValue} ms");
        }
    }
}
