using System.Globalization;
using Zaichik.Protocol;

namespace Zaichik.Cli.Infrastructure;

/// <summary>
/// Parses <c>--from</c>: <c>retained</c>, <c>latest</c>, <c>seq:N</c>, or <c>time:T</c> with T an ISO 8601 time or a
/// duration before now (<c>-5m</c>, <c>-1h</c>).
/// </summary>
internal static class StartPositions
{
    public const string Help = "retained | latest | seq:N | time:T (T is ISO 8601, or relative: -5m, -1h)";

    public static bool TryParse(string text, TimeProvider time, out StartPosition position, out string? problem)
    {
        position = StartPosition.Retained;
        problem = null;
        if (text.Equals("retained", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        if (text.Equals("latest", StringComparison.OrdinalIgnoreCase))
        {
            position = StartPosition.Latest;
            return true;
        }

        if (text.StartsWith("seq:", StringComparison.OrdinalIgnoreCase))
        {
            if (long.TryParse(text.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out var sequence) && sequence >= 1)
            {
                position = StartPosition.Sequence(sequence);
                return true;
            }

            problem = $"'{text}' is not a start position: seq: takes a sequence of 1 or more";
            return false;
        }

        if (text.StartsWith("time:", StringComparison.OrdinalIgnoreCase))
        {
            var value = text[5..];
            DateTimeOffset? at = null;
            if (value.StartsWith('-') && Durations.TryParse(value[1..], out var ago))
            {
                at = time.GetUtcNow() - ago;
            }
            else if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var absolute))
            {
                at = absolute;
            }

            if (at is { } start && start.ToUnixTimeMilliseconds() >= 0)
            {
                position = StartPosition.Time(start);
                return true;
            }

            problem = $"'{text}' is not a start position: time: takes an ISO 8601 time (2026-11-27T21:00:00Z) or a duration ago (-5m)";
            return false;
        }

        problem = $"'{text}' is not a start position; use {Help}";
        return false;
    }
}
