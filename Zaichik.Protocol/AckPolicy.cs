namespace Zaichik.Protocol;

/// <summary>Whether a subscription's deliveries wait for Commit.</summary>
public enum AckPolicy : byte
{
    /// <summary>Delivered messages count against the connection's prefetch window until committed (the default).</summary>
    Explicit = 0,

    /// <summary>
    /// Nothing to commit: messages are delivered as fast as the connection takes them, paced by the socket alone, and
    /// prefetch does not apply. A durable consumer's position moves to each message once it is written to the connection
    /// (at most once across a disconnect).
    /// </summary>
    None = 1,
}
