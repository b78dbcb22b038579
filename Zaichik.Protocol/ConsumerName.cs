namespace Zaichik.Protocol;

/// <summary>Rules for durable consumer names: they name a file on the server, like topic names, but shorter.</summary>
public static class ConsumerName
{
    /// <summary>Longest durable consumer name.</summary>
    public const int MaxLength = 64;

    /// <summary>Returns null when <paramref name="name"/> is a valid durable consumer name, otherwise why it is not.</summary>
    public static string? Validate(string? name) =>
        TopicName.Validate(name, MaxLength)?.Replace("topic name", "durable consumer name", StringComparison.Ordinal);
}
