namespace Zaichik.Client;

/// <summary>Where a client's connection stands.</summary>
public enum ZaichikConnectionState
{
    /// <summary>Opening its first connection; calls wait for it.</summary>
    Connecting,

    /// <summary>Connected: requests go out at once.</summary>
    Connected,

    /// <summary>The connection was lost and the client is opening another; calls wait for it.</summary>
    Reconnecting,

    /// <summary>Disposed, or it gave up (reconnect off or out of attempts): every call fails.</summary>
    Closed,
}
