namespace Zaichik.Protocol;

/// <summary>Codes carried by an Error frame. Values are part of the wire format and never change meaning.</summary>
public enum ErrorCode : ushort
{
    /// <summary>An error the server did not classify (a server bug, logged by the server); the connection is closed. The text says more.</summary>
    Unknown = 0,
    /// <summary>The client's protocol version is not served. The connection is closed.</summary>
    UnsupportedVersion = 1,
    /// <summary>A frame could not be parsed. The connection is closed.</summary>
    MalformedFrame = 2,
    /// <summary>A frame's declared length exceeds the maximum frame size. The connection is closed.</summary>
    FrameTooLarge = 3,
    /// <summary>A frame arrived that is not valid at this point (for example anything before Hello).</summary>
    ProtocolViolation = 4,
    /// <summary>The topic name is empty, too long or uses characters outside the allowed set.</summary>
    InvalidTopicName = 10,
    /// <summary>The topic does not exist and the server does not create topics automatically.</summary>
    TopicNotFound = 11,
    /// <summary>CreateTopic named an existing topic with different settings.</summary>
    TopicSettingsConflict = 12,
    /// <summary>The message key is longer than the server allows.</summary>
    KeyTooLarge = 13,
    /// <summary>A field value is out of range (negative TTL, prefetch of zero, ...).</summary>
    InvalidArgument = 14,
    /// <summary>The connection already subscribes to that topic.</summary>
    AlreadySubscribed = 15,
    /// <summary>The connection does not subscribe to that topic.</summary>
    NotSubscribed = 16,
    /// <summary>The payload is larger than the server allows.</summary>
    PayloadTooLarge = 17,
    // 18 was LimitExceeded in version 2; version 3 names each limit (30..33).
    /// <summary>A Publish's headers are larger than the server allows (<c>MaxHeadersSize</c>).</summary>
    HeadersTooLarge = 19,
    /// <summary>The storage layer failed to accept or read the record.</summary>
    StorageFailure = 20,
    /// <summary>The server is stopping and accepts no new work.</summary>
    ServerShuttingDown = 21,
    /// <summary>
    /// A durable consumer's stored position cannot be read (a damaged file; the server log names it). Rather than guess
    /// where the consumer was, and redeliver or skip messages, the server refuses the Subscribe unless its start position
    /// is a sequence or a time, which then sets where the consumer resumes. The connection stays open.
    /// </summary>
    ConsumerPositionLost = 22,
    /// <summary>
    /// Sent without a request id, right before the Pong of a Ping: the durable consumer positions that Commits before that
    /// Ping moved on an Always topic could not be written to disk. They stay in the server's memory and are written by
    /// the topic's next flush. The connection stays open.
    /// </summary>
    CommitNotDurable = 23,
    /// <summary>The server serves its maximum number of connections. Sent instead of Hello; the connection is closed.</summary>
    TooManyConnections = 30,
    /// <summary>The connection holds the maximum number of subscriptions; the Subscribe is refused.</summary>
    TooManySubscriptions = 31,
    /// <summary>The server holds the maximum number of topics; the topic is not created.</summary>
    TooManyTopics = 32,
    /// <summary>
    /// The connection has the maximum number of publishes the server has read but not yet answered; this publish is
    /// refused unstored. Wait for answers before sending more.
    /// </summary>
    TooManyPublishesInFlight = 33,
    /// <summary>Nothing arrived on the connection for the server's idle timeout. The connection is closed.</summary>
    IdleTimeout = 34,
    /// <summary>The server requires a token and the Hello carried none or an unknown one. The connection is closed.</summary>
    AuthenticationFailed = 40,
    /// <summary>The token does not allow this operation on this topic; the request is refused, the connection stays open.</summary>
    NotAuthorized = 41,
    // 50..52 are version 8 codes, sent by cluster nodes; a version 7 client sees them as codes it does not know.
    /// <summary>
    /// Cluster nodes only: no leader is known for the request's topic now (an election is running, or a majority of nodes
    /// cannot be reached). The request was not carried out; send it again after a short wait. The connection stays open.
    /// </summary>
    NoLeader = 50,
    /// <summary>Cluster nodes only: the request is not supported on a cluster yet (its text says which). The connection stays open.</summary>
    NotSupportedInCluster = 51,
    /// <summary>
    /// Cluster nodes only, to a version 7 client (which does not know the Redirect frame): this node does not lead the
    /// request's topic, and the request was not carried out. The text names the leader and where it takes clients; connect
    /// there and send it again. Version 8 clients get a <see cref="RedirectFrame"/> instead. The connection stays open,
    /// unless the Error comes without a request id (the node stopped leading), then it is closed.
    /// </summary>
    NotLeader = 52,
}
