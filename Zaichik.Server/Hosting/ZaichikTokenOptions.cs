using System.Text;

namespace Zaichik.Server.Hosting;

/// <summary>
/// One client credential: the secret a client puts in its Hello, and the topic patterns it may publish and subscribe
/// to. Bound from <c>Zaichik:Tokens:N</c>. <see cref="object.ToString"/> never shows the secret.
/// </summary>
public sealed record ZaichikTokenOptions
{
    /// <summary>A name for logs and errors (the secret itself is never logged). Required.</summary>
    public string Name { get; set; } = "";

    /// <summary>The secret, at least 16 characters. Required. Never shown by the admin API.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string Token { get; set; } = "";

    /// <summary>
    /// Topic patterns this token may publish to and create: a name, or dot-separated segments where <c>*</c> stands
    /// for exactly one segment and a final <c>&gt;</c> for one or more (<c>orders.*</c>, <c>audit.&gt;</c>, <c>&gt;</c>).
    /// Empty: no publishing.
    /// </summary>
    public IReadOnlyList<string> Publish { get; set; } = [];

    /// <summary>Topic patterns this token may subscribe to, written like <see cref="Publish"/>. Empty: no subscribing.</summary>
    public IReadOnlyList<string> Subscribe { get; set; } = [];

    /// <summary>
    /// Whether this token may use the admin HTTP API and read <c>/metrics</c> (<c>Authorization: Bearer</c>). Default false.
    /// </summary>
    public bool Admin { get; set; }

    /// <summary>Shortest token accepted, so that a configured secret cannot be guessed by trying.</summary>
    public const int MinimumTokenLength = 16;

    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append("Name = ").Append(Name)
            .Append(", Token = (hidden)")
            .Append(", Publish = [").AppendJoin(", ", Publish).Append(']')
            .Append(", Subscribe = [").AppendJoin(", ", Subscribe).Append(']')
            .Append(", Admin = ").Append(Admin);
        return true;
    }
}
