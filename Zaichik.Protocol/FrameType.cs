namespace Zaichik.Protocol;

/// <summary>The one-byte type that follows every frame's length prefix.</summary>
public enum FrameType : byte
{
    /// <summary>Opens a connection (client to server) and answers it (server to client).</summary>
    Hello = 0x01,
    /// <summary>Creates a topic with retention and compaction settings, or confirms an identical one.</summary>
    CreateTopic = 0x02,
    /// <summary>Publishes one message to a topic.</summary>
    Publish = 0x03,
    /// <summary>Starts delivery of a topic to this connection.</summary>
    Subscribe = 0x04,
    /// <summary>Stops delivery of a topic to this connection.</summary>
    Unsubscribe = 0x05,
    /// <summary>Acknowledges delivered messages so that more may be sent.</summary>
    Commit = 0x06,
    /// <summary>Asks the server to close the connection after what it has already sent.</summary>
    Close = 0x07,
    /// <summary>Asks the peer to answer with Pong (either direction, after Hello).</summary>
    Ping = 0x08,
    /// <summary>The answer to a Ping (either direction).</summary>
    Pong = 0x09,
    /// <summary>Returns one delivered message of a group member for redelivery, now or after a delay.</summary>
    Nack = 0x0A,
    /// <summary>A delivered message (server to client).</summary>
    Message = 0x10,
    /// <summary>The answer to a request that succeeded (server to client).</summary>
    Ack = 0x11,
    /// <summary>The answer to a request that failed, or a connection-level failure (server to client).</summary>
    Error = 0x12,
    /// <summary>Names the cluster node that leads a request's topic; the client reconnects there (server to client, cluster nodes only).</summary>
    Redirect = 0x13,
}
