using System.Globalization;

namespace Zaichik.Protocol;

/// <summary>What a <see cref="StartPosition"/> counts from. The values are the wire values of Subscribe's <c>from</c> byte.</summary>
public enum StartPositionKind : byte
{
    /// <summary>Every retained, unexpired message first, in sequence order, then live ones.</summary>
    Retained = 0,

    /// <summary>Only messages published after the subscription was acknowledged.</summary>
    Latest = 1,

    /// <summary>The first stored, unexpired message whose sequence is at least <see cref="StartPosition.Value"/>.</summary>
    Sequence = 2,

    /// <summary>The first stored, unexpired message whose timestamp is at or after <see cref="StartPosition.Value"/> (Unix ms).</summary>
    Time = 3,
}

/// <summary>
/// Where a new subscription starts reading its topic: <see cref="Retained"/>, <see cref="Latest"/>, a
/// <see cref="Sequence(long)"/> or a <see cref="Time(DateTimeOffset)"/>. Build one with these members; the factories
/// refuse values the server would refuse, so a position built here is never answered with InvalidArgument.
/// <c>default</c> is <see cref="Retained"/>.
/// </summary>
public readonly record struct StartPosition
{
    /// <summary>9999-12-31T23:59:59.999Z, the last millisecond <see cref="DateTimeOffset"/> holds.</summary>
    private const long MaxUnixTimeMilliseconds = 253_402_300_799_999;

    /// <summary>
    /// Takes the kind and value as they are, unchecked: the codec decodes what a peer sent (a Retained position with a
    /// non-zero value included) so that the server, not the codec, decides what to refuse.
    /// </summary>
    internal StartPosition(StartPositionKind kind, long value)
    {
        Kind = kind;
        Value = value;
    }

    /// <summary>Every retained, unexpired message first, then live ones. On a topic without retention, like <see cref="Latest"/>.</summary>
    public static StartPosition Retained => default;

    /// <summary>Only messages published after the subscription was acknowledged.</summary>
    public static StartPosition Latest { get; } = new(StartPositionKind.Latest, 0);

    /// <summary>What <see cref="Value"/> means.</summary>
    public StartPositionKind Kind { get; }

    /// <summary>
    /// For <see cref="StartPositionKind.Sequence"/> the first sequence wanted; for <see cref="StartPositionKind.Time"/> a Unix
    /// time in milliseconds; 0 for <see cref="StartPositionKind.Retained"/> and <see cref="StartPositionKind.Latest"/>.
    /// </summary>
    public long Value { get; }

    /// <summary>
    /// Starts at the first stored, unexpired message whose sequence is <paramref name="sequence"/> or more. A sequence past
    /// the topic's last one waits for that message to be published.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="sequence"/> is less than 1 (sequences start at 1).</exception>
    public static StartPosition Sequence(long sequence)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sequence, 1);
        return new(StartPositionKind.Sequence, sequence);
    }

    /// <summary>Starts at the first stored, unexpired message the server accepted at or after <paramref name="time"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="time"/> is before the Unix epoch.</exception>
    public static StartPosition Time(DateTimeOffset time)
    {
        var unixTimeMilliseconds = time.ToUnixTimeMilliseconds();
        if (unixTimeMilliseconds < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(time), time, "the start time must not be before the Unix epoch (1970-01-01T00:00:00Z)");
        }

        return new(StartPositionKind.Time, unixTimeMilliseconds);
    }

    /// <summary>Starts at the first stored, unexpired message the server accepted at or after this Unix time in milliseconds.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="unixTimeMilliseconds"/> is negative.</exception>
    public static StartPosition Time(long unixTimeMilliseconds)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(unixTimeMilliseconds);
        return new(StartPositionKind.Time, unixTimeMilliseconds);
    }

    /// <summary>"Retained", "Latest", "Sequence(42)" or "Time(2026-11-27T10:00:00.000Z)".</summary>
    public override string ToString() => Kind switch
    {
        StartPositionKind.Retained or StartPositionKind.Latest => Value == 0 ? Kind.ToString() : $"{Kind}({Value})",
        StartPositionKind.Sequence => $"Sequence({Value})",
        StartPositionKind.Time => $"Time({FormatTime(Value)})",
        _ => $"StartPositionKind {(byte)Kind}({Value})",
    };

    /// <summary>ISO 8601 in UTC to the millisecond; a value outside what DateTimeOffset holds (decoded from a peer) as a number.</summary>
    private static string FormatTime(long unixTimeMilliseconds) =>
        unixTimeMilliseconds is >= 0 and <= MaxUnixTimeMilliseconds
            ? DateTimeOffset.FromUnixTimeMilliseconds(unixTimeMilliseconds).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)
            : $"{unixTimeMilliseconds} ms";
}
