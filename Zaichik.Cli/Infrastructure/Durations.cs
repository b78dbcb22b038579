using System.Globalization;

namespace Zaichik.Cli.Infrastructure;

/// <summary>Durations as the command line writes them: <c>500ms</c>, <c>10s</c>, <c>5m</c>, <c>1h</c>, <c>7d</c>, or <c>0</c>.</summary>
internal static class Durations
{
    public static bool TryParse(string text, out TimeSpan duration)
    {
        duration = default;
        text = text.Trim();
        if (text == "0")
        {
            return true;
        }

        var (digits, unit) = text.EndsWith("ms", StringComparison.OrdinalIgnoreCase)
            ? (text[..^2], "ms")
            : text.Length > 1 ? (text[..^1], text[^1..].ToLowerInvariant()) : (text, "");
        if (!double.TryParse(digits, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value))
        {
            return false;
        }

        TimeSpan? parsed = unit switch
        {
            "ms" => TimeSpan.FromMilliseconds(value),
            "s" => TimeSpan.FromSeconds(value),
            "m" => TimeSpan.FromMinutes(value),
            "h" => TimeSpan.FromHours(value),
            "d" => TimeSpan.FromDays(value),
            _ => null,
        };
        if (parsed is not { } result)
        {
            return false;
        }

        duration = result;
        return true;
    }

    /// <summary>The shortest exact form: 3600000 ms is <c>1h</c>, 90000 ms is <c>90s</c>, 0 is <c>0</c>.</summary>
    public static string Format(TimeSpan duration) => Format((long)duration.TotalMilliseconds);

    public static string Format(long milliseconds)
    {
        if (milliseconds == 0)
        {
            return "0";
        }

        foreach (var (size, unit) in new[] { (86_400_000L, "d"), (3_600_000L, "h"), (60_000L, "m"), (1000L, "s") })
        {
            if (milliseconds % size == 0)
            {
                return $"{milliseconds / size}{unit}";
            }
        }

        return $"{milliseconds}ms";
    }
}
