namespace Zaichik.Server.Hosting;

/// <summary>Listeners beyond the client TCP port, bound from <c>Zaichik:Listeners</c>.</summary>
public sealed record ListenerOptions
{
    /// <summary>The WebSocket listener, for browsers and other clients that reach the broker over HTTP.</summary>
    public WebSocketListenerOptions WebSocket { get; set; } = new();
}

/// <summary>
/// The WebSocket listener: the same protocol frames as the TCP port, in binary WebSocket messages, through the same session
/// code (tokens, limits, idle timeout and heartbeats apply unchanged). Bound from <c>Zaichik:Listeners:WebSocket</c>.
/// </summary>
public sealed record WebSocketListenerOptions
{
    /// <summary>
    /// Where it listens: <c>http://host:port/path</c> (<c>ws://</c> for clients), or <c>https://</c> with the broker's TLS
    /// certificate (<c>wss://</c>); port 0 picks a free one. Empty or <c>off</c> (the default) turns it off. Example
    /// <c>http://127.0.0.1:8891/ws</c>.
    /// </summary>
    public string Url { get; set; } = "";

    /// <summary>
    /// The Origins (<c>scheme://host[:port]</c>) whose pages may connect, besides the listener's own origin (same-origin).
    /// <c>*</c> allows any. Requests without an Origin header (not from a browser) are always allowed: browsers send it,
    /// and tokens, not Origins, authenticate other clients. Default: none but same-origin.
    /// </summary>
    public IReadOnlyList<string> AllowedOrigins { get; set; } = [];

    /// <summary>How often the server sends a WebSocket ping frame on an idle connection; zero turns that off. Default 30 s.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>True when the listener is on.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool Enabled => !string.IsNullOrWhiteSpace(Url) && !Url.Trim().Equals("off", StringComparison.OrdinalIgnoreCase);

    /// <summary>The parsed <see cref="Url"/>; valid only when <see cref="Validate"/> found nothing.</summary>
    internal Uri ParsedUrl => new(Url, UriKind.Absolute);

    /// <summary>The URL path clients connect to (<c>/</c> when the URL has none).</summary>
    internal string Path => ParsedUrl.AbsolutePath;

    /// <summary>Every problem with these options; empty when they are valid.</summary>
    public IEnumerable<string> Validate(bool tlsConfigured)
    {
        if (KeepAliveInterval < TimeSpan.Zero)
        {
            yield return $"Listeners:WebSocket:KeepAliveInterval is {KeepAliveInterval}; it must be zero (off) or positive";
        }

        foreach (var origin in AllowedOrigins ?? [])
        {
            if (origin != "*" && (!Uri.TryCreate(origin, UriKind.Absolute, out var parsed) || parsed.AbsolutePath != "/" || origin.EndsWith('/')))
            {
                yield return $"Listeners:WebSocket:AllowedOrigins has '{origin}'; an origin is scheme://host[:port] (no path), or * for any";
            }
        }

        if (!Enabled)
        {
            yield break;
        }

        if (!Uri.TryCreate(Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https" or "ws" or "wss") || !string.IsNullOrEmpty(url.Query))
        {
            yield return $"Listeners:WebSocket:Url '{Url}' is not an http://host:port/path or https://host:port/path address (empty turns the listener off)";
            yield break;
        }

        if (url.Host != "localhost" && !System.Net.IPAddress.TryParse(url.Host.Trim('[', ']'), out _))
        {
            yield return $"Listeners:WebSocket:Url '{Url}': the host must be an IP address or 'localhost'";
        }

        if (url.Scheme is "https" or "wss" && !tlsConfigured)
        {
            yield return $"Listeners:WebSocket:Url '{Url}' is https, but no Tls certificate is configured; use http or set Tls:CertificatePath";
        }
    }

    internal bool IsTls => ParsedUrl.Scheme is "https" or "wss";
}
