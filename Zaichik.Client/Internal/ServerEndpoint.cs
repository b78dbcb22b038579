using System.Globalization;

namespace Zaichik.Client.Internal;

/// <summary>
/// A server's TCP client listener as <c>host:port</c> (<c>[address]:port</c> for an IPv6 address): an entry of
/// <see cref="ZaichikClientOptions.Servers"/>, or the endpoint a cluster node's Redirect names.
/// </summary>
/// <param name="Host">The host name or address.</param>
/// <param name="Port">The TCP port.</param>
/// <param name="WebSocket">For a WebSocket client, the URL to open (a Redirect's leader); null: the configured one.</param>
internal readonly record struct ServerEndpoint(string Host, int Port, Uri? WebSocket = null)
{
    /// <summary>Reads <paramref name="text"/>; false with the reason in <paramref name="problem"/> when it is not <c>host:port</c>.</summary>
    public static bool TryParse(string? text, out ServerEndpoint endpoint, out string problem)
    {
        endpoint = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            problem = "it is empty";
            return false;
        }

        var colon = text.LastIndexOf(':');
        if (colon < 0 || (text.StartsWith('[') && colon < text.IndexOf(']', StringComparison.Ordinal)))
        {
            problem = "it has no port (expected host:port)";
            return false;
        }

        var host = text[..colon];
        var portText = text[(colon + 1)..];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }
        else if (host.Contains(':', StringComparison.Ordinal))
        {
            problem = "an IPv6 address must be written in brackets, as [address]:port";
            return false;
        }

        if (string.IsNullOrWhiteSpace(host) || host.Any(char.IsWhiteSpace))
        {
            problem = "it has no host (expected host:port)";
            return false;
        }

        if (portText.Length == 0)
        {
            problem = "it has no port (expected host:port)";
            return false;
        }

        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            problem = $"the port '{portText}' is not 1 to 65535";
            return false;
        }

        endpoint = new ServerEndpoint(host, port);
        problem = string.Empty;
        return true;
    }

    /// <summary>As <c>host:port</c>, with an IPv6 address in brackets.</summary>
    public override string ToString() => WebSocket?.ToString() ?? Format(Host, Port);

    public static string Format(string host, int port) =>
        host.Contains(':', StringComparison.Ordinal) ? $"[{host}]:{port}" : $"{host}:{port}";
}
