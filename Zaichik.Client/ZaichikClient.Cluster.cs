using Zaichik.Client.Internal;

namespace Zaichik.Client;

/// <summary>
/// Where the client connects. The endpoints are [Host:Port, ...Servers]: attempts go round robin, moving on when one
/// fails.
/// </summary>
public sealed partial class ZaichikClient
{
    // Guarded by _admission: the round robin's position.
    private ServerEndpoint[] _endpoints = [];
    private int _nextEndpoint;
    private string _currentEndpoint = string.Empty;

    /// <summary>
    /// The <c>host:port</c> of the server in use, or of the one being tried while the client connects (the WebSocket URL
    /// with <see cref="ZaichikClientOptions.WebSocketUrl"/>).
    /// </summary>
    public string CurrentEndpoint => Volatile.Read(ref _currentEndpoint);

    private void InitializeEndpoints()
    {
        var endpoints = new ServerEndpoint[1 + Options.Servers.Count];
        endpoints[0] = new ServerEndpoint(Options.Host, Options.Port);
        for (var i = 0; i < Options.Servers.Count; i++)
        {
            // Validated with the options.
            ServerEndpoint.TryParse(Options.Servers[i], out endpoints[i + 1], out _);
        }

        _endpoints = endpoints;
        _currentEndpoint = Options.WebSocketUrl?.ToString() ?? endpoints[0].ToString();
    }

    /// <summary>The endpoint the next attempt goes to; it becomes <see cref="CurrentEndpoint"/>.</summary>
    private ServerEndpoint TargetEndpoint()
    {
        lock (_admission)
        {
            var endpoint = _endpoints[_nextEndpoint];
            if (Options.WebSocketUrl is null)
            {
                Volatile.Write(ref _currentEndpoint, endpoint.ToString());
            }

            return endpoint;
        }
    }

    /// <summary>An attempt to <paramref name="endpoint"/> failed: the next goes to the next endpoint.</summary>
    private void EndpointFailed(ServerEndpoint endpoint)
    {
        lock (_admission)
        {
            if (_endpoints[_nextEndpoint] == endpoint)
            {
                _nextEndpoint = (_nextEndpoint + 1) % _endpoints.Length;
            }
        }
    }
}
