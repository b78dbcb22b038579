namespace Zaichik.Server.Security;

/// <summary>What one authenticated connection may do: the topic patterns of the token it presented.</summary>
internal sealed class TokenGrant
{
    /// <summary>The grant of every connection when the server has no tokens configured.</summary>
    public static TokenGrant Everything { get; } = new("anonymous", null, null, admin: true);

    private readonly TopicPattern[]? _publish;
    private readonly TopicPattern[]? _subscribe;

    /// <param name="name">The token's name, for logs.</param>
    /// <param name="publish">Patterns allowed to publish; null allows every topic.</param>
    /// <param name="subscribe">Patterns allowed to subscribe; null allows every topic.</param>
    /// <param name="admin">Whether the admin API and metrics are allowed.</param>
    public TokenGrant(string name, TopicPattern[]? publish, TopicPattern[]? subscribe, bool admin = false)
    {
        Name = name;
        MayAdminister = admin;
        _publish = publish;
        _subscribe = subscribe;
    }

    public string Name { get; }

    /// <summary>Whether the admin HTTP API and <c>/metrics</c> are allowed.</summary>
    public bool MayAdminister { get; }

    /// <summary>Whether publishing to (and creating) <paramref name="topic"/> is allowed.</summary>
    public bool MayPublish(string topic) => Allows(_publish, topic);

    /// <summary>Whether subscribing to <paramref name="topic"/> is allowed.</summary>
    public bool MaySubscribe(string topic) => Allows(_subscribe, topic);

    private static bool Allows(TopicPattern[]? patterns, string topic)
    {
        if (patterns is null)
        {
            return true;
        }

        foreach (var pattern in patterns)
        {
            if (pattern.Matches(topic))
            {
                return true;
            }
        }

        return false;
    }
}
