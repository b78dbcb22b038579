namespace Zaichik.Client;

/// <summary>
/// A cluster node did not carry out a request: it redirected it to the node that leads its topic, or knew no leader
/// (an election is running). The client leaves that node and connects to <see cref="Endpoint"/> (or, without one, to
/// the next of its servers) after <see cref="Delay"/>; the request stays pending and goes out again there.
/// </summary>
/// <param name="From">The <c>host:port</c> of the node that answered.</param>
/// <param name="Topic">The request's topic, when known.</param>
/// <param name="LeaderNode">The id of the node that leads the topic, or null when the node knew no leader.</param>
/// <param name="Endpoint">The leader's <c>host:port</c>, where the client goes next; null when the node knew no leader (or named no usable endpoint).</param>
/// <param name="Delay">How long the client waits before connecting again: none for the first redirect of a series, the reconnect backoff after.</param>
public sealed record ZaichikRedirect(string From, string? Topic, string? LeaderNode, string? Endpoint, TimeSpan Delay);
