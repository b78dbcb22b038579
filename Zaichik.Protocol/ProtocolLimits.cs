namespace Zaichik.Protocol;

/// <summary>Sizes the wire format itself imposes, and the defaults both ends start from.</summary>
public static class ProtocolLimits
{
    /// <summary>Bytes in the big-endian length prefix of every frame.</summary>
    public const int LengthPrefixSize = 4;

    /// <summary>
    /// Default largest frame body (type byte and fields) a peer accepts: a 1 MiB payload plus room for the topic, a
    /// 1 KiB key and 16 KiB of headers (the server's default limits), with room to spare.
    /// </summary>
    public const int DefaultMaxFrameSize = (1024 * 1024) + (32 * 1024);

    /// <summary>Longest string the format can carry (a u16 length prefix).</summary>
    public const int MaxStringBytes = ushort.MaxValue;

    /// <summary>Longest key the format can carry (a u16 length prefix).</summary>
    public const int MaxKeyBytes = ushort.MaxValue;

    /// <summary>Default longest topic name, in bytes.</summary>
    public const int DefaultMaxTopicNameLength = 200;
}
