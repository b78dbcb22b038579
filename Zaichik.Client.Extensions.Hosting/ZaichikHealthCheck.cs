using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Zaichik.Client.Extensions.Hosting;

/// <summary>
/// Reports a <see cref="ZaichikClient"/>'s connection: Healthy while <see cref="ZaichikConnectionState.Connected"/>,
/// Degraded while connecting or reconnecting, and the registration's failure status (Unhealthy by default) once
/// <see cref="ZaichikConnectionState.Closed"/>. The data carry <c>host</c>, <c>port</c> and <c>state</c>. It sends
/// nothing to the broker: the client's heartbeats already keep its state current.
/// </summary>
public sealed class ZaichikHealthCheck : IHealthCheck
{
    private readonly ZaichikClient _client;

    /// <summary>Creates a health check of <paramref name="client"/>.</summary>
    public ZaichikHealthCheck(ZaichikClient client)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = client;
    }

    /// <inheritdoc />
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var state = _client.ConnectionState;
        var host = _client.Options.Host;
        var port = _client.Options.Port;
        var data = new Dictionary<string, object>
        {
            ["host"] = host,
            ["port"] = port,
            ["state"] = state.ToString(),
        };
        var description = $"Zaichik at {host}:{port} is {state}";
        var status = state switch
        {
            ZaichikConnectionState.Connected => HealthStatus.Healthy,
            ZaichikConnectionState.Connecting or ZaichikConnectionState.Reconnecting => HealthStatus.Degraded,
            _ => context?.Registration?.FailureStatus ?? HealthStatus.Unhealthy,
        };
        return Task.FromResult(new HealthCheckResult(status, description, data: data));
    }
}
