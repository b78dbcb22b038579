namespace Zaichik.Server.Hosting;

/// <summary>
/// The admin HTTP listener: the admin API (<c>/api/...</c>), Prometheus metrics (<c>/metrics</c>), health probes
/// (<c>/healthz</c>, <c>/readyz</c>) and the dashboard (<c>/</c>). Bound from <c>Zaichik:Admin</c>; docs/admin-api.md
/// describes every endpoint.
/// </summary>
public sealed record AdminOptions
{
    /// <summary>The default listener: loopback only, beside the client port.</summary>
    public const string DefaultUrl = "http://127.0.0.1:8890";

    /// <summary>
    /// Where the admin listener listens: <c>http://host:port</c> (or <c>https://</c> with the broker's TLS certificate);
    /// port 0 picks a free one. Empty or <c>off</c> turns the listener off. Default <c>http://127.0.0.1:8890</c>.
    /// </summary>
    public string Url { get; set; } = DefaultUrl;

    /// <summary>Most messages one peek (<c>GET /api/topics/{name}/messages</c>) returns. Default 100.</summary>
    public int MaxPeekMessages { get; set; } = 100;

    /// <summary>Most topics one <c>GET /api/topics</c> returns; page with <c>after=</c>. Default 1,000.</summary>
    public int MaxTopicsPerPage { get; set; } = 1_000;

    /// <summary>True when the listener is on.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool Enabled => !string.IsNullOrWhiteSpace(Url) && !Url.Trim().Equals("off", StringComparison.OrdinalIgnoreCase);

    /// <summary>The parsed <see cref="Url"/>; valid only when <see cref="Validate"/> found nothing.</summary>
    internal Uri ParsedUrl => new(Url, UriKind.Absolute);

    /// <summary>Every problem with these options; empty when they are valid.</summary>
    public IEnumerable<string> Validate(bool tlsConfigured)
    {
        if (MaxPeekMessages is < 1 or > 10_000)
        {
            yield return $"Admin:MaxPeekMessages is {MaxPeekMessages}; it must be 1..10,000";
        }

        if (MaxTopicsPerPage is < 1 or > 100_000)
        {
            yield return $"Admin:MaxTopicsPerPage is {MaxTopicsPerPage}; it must be 1..100,000";
        }

        if (!Enabled)
        {
            yield break;
        }

        if (!Uri.TryCreate(Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https") || url.AbsolutePath != "/" || !string.IsNullOrEmpty(url.Query))
        {
            yield return $"Admin:Url '{Url}' is not an http://host:port or https://host:port address (empty turns the admin listener off)";
            yield break;
        }

        if (url.Host != "localhost" && !System.Net.IPAddress.TryParse(url.Host.Trim('[', ']'), out _))
        {
            yield return $"Admin:Url '{Url}': the host must be an IP address or 'localhost'";
        }

        if (url.Scheme == "https" && !tlsConfigured)
        {
            yield return $"Admin:Url '{Url}' is https, but no Tls certificate is configured; use http or set Tls:CertificatePath";
        }
    }
}
