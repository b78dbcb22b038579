namespace Zaichik.Protocol;

/// <summary>Where a new subscription starts reading its topic.</summary>
public enum StartPosition : byte
{
    /// <summary>Every retained, unexpired message first, in publish order, then live ones.</summary>
    Retained = 0,
    /// <summary>Only messages published after the subscription was acknowledged.</summary>
    Latest = 1,
}
