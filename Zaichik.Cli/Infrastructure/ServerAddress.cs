using System.Globalization;

namespace Zaichik.Cli.Infrastructure;

/// <summary>A broker's <c>host:port</c> (an IPv6 address in brackets: <c>[::1]:8889</c>).</summary>
internal readonly record struct ServerAddress(string Host, int Port)
{
    public static bool TryParse(string text, out ServerAddress address)
    {
        address = default;
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            return false;
        }

        var host = text[..colon];
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }

        if (host.Length == 0)
        {
            return false;
        }

        address = new ServerAddress(host, port);
        return true;
    }

    public override string ToString() => Host.Contains(':') ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}
