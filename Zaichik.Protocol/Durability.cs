namespace Zaichik.Protocol;

/// <summary>When a topic's messages reach the disk, and so when a publish is acknowledged.</summary>
public enum Durability : byte
{
    /// <summary>In CreateTopic: use the server's configured default.</summary>
    ServerDefault = 0,

    /// <summary>A publish is acknowledged only after its record is committed to disk (group commit).</summary>
    Always = 1,

    /// <summary>A publish is acknowledged once appended; the log is committed on a timer.</summary>
    Interval = 2,

    /// <summary>Nothing is written to disk; the topic's messages live only in memory.</summary>
    Memory = 3,
}
