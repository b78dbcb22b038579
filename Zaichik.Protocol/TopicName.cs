namespace Zaichik.Protocol;

/// <summary>
/// Rules for topic names. A topic name becomes a folder name on the server, so it is restricted to
/// ASCII letters, digits, '.', '-' and '_', must not start with '.', and is bounded in length.
/// </summary>
public static class TopicName
{
    /// <summary>Returns null when <paramref name="name"/> is a valid topic name, otherwise why it is not.</summary>
    public static string? Validate(string? name, int maxLength = ProtocolLimits.DefaultMaxTopicNameLength)
    {
        if (string.IsNullOrEmpty(name))
        {
            return "topic name is empty";
        }

        if (name.Length > maxLength)
        {
            return $"topic name is {name.Length} characters; the limit is {maxLength}";
        }

        if (name[0] == '.')
        {
            return "topic name must not start with '.'";
        }

        foreach (var c in name)
        {
            if (!IsAllowed(c))
            {
                return $"topic name contains '{c}'; allowed are ASCII letters, digits, '.', '-' and '_'";
            }
        }

        return null;
    }

    private static bool IsAllowed(char c) =>
        char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_';
}
