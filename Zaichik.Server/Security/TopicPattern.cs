namespace Zaichik.Server.Security;

/// <summary>
/// A topic name pattern of dot-separated segments: a literal segment matches itself, <c>*</c> matches exactly one
/// segment, and <c>&gt;</c> as the last segment matches one or more. <c>orders.*</c> matches <c>orders.eu</c> but
/// not <c>orders</c> or <c>orders.eu.paid</c>; <c>orders.&gt;</c> matches both of the latter two's longer forms;
/// <c>&gt;</c> matches every topic. Matching allocates nothing.
/// </summary>
internal sealed class TopicPattern
{
    private readonly string[] _segments;

    private TopicPattern(string text, string[] segments)
    {
        Text = text;
        _segments = segments;
    }

    public string Text { get; }

    /// <summary>Parses <paramref name="text"/>; null and a reason when it is not a valid pattern.</summary>
    public static TopicPattern? TryParse(string? text, out string? problem)
    {
        problem = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            problem = "a topic pattern is empty";
            return null;
        }

        var segments = text.Split('.');
        for (var i = 0; i < segments.Length; i++)
        {
            var segment = segments[i];
            if (segment.Length == 0)
            {
                problem = $"topic pattern '{text}' has an empty segment";
                return null;
            }

            if (segment == ">" && i != segments.Length - 1)
            {
                problem = $"topic pattern '{text}' uses '>' before its last segment";
                return null;
            }

            if (segment.Length > 1 && (segment.Contains('*') || segment.Contains('>')))
            {
                problem = $"topic pattern '{text}' mixes '*' or '>' with other characters in one segment; they stand for whole segments";
                return null;
            }

            foreach (var c in segment)
            {
                if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '*' or '>'))
                {
                    problem = $"topic pattern '{text}' contains '{c}'; topic names use ASCII letters, digits, '.', '-' and '_'";
                    return null;
                }
            }
        }

        return new TopicPattern(text, segments);
    }

    public bool Matches(ReadOnlySpan<char> topic)
    {
        var remaining = topic;
        for (var i = 0; i < _segments.Length; i++)
        {
            var pattern = _segments[i];
            if (pattern == ">")
            {
                return !remaining.IsEmpty;
            }

            if (remaining.IsEmpty && i > 0)
            {
                return false;
            }

            var dot = remaining.IndexOf('.');
            var segment = dot < 0 ? remaining : remaining[..dot];
            if (segment.IsEmpty || (pattern != "*" && !segment.SequenceEqual(pattern)))
            {
                return false;
            }

            remaining = dot < 0 ? [] : remaining[(dot + 1)..];
            if (dot >= 0 && remaining.IsEmpty)
            {
                // A trailing dot leaves an empty last segment, which no pattern segment matches.
                return false;
            }
        }

        return remaining.IsEmpty;
    }

    public override string ToString() => Text;
}
