using Microsoft.Extensions.Diagnostics.HealthChecks;
using Zaichik.Client;
using Zaichik.Client.Extensions.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the Zaichik connection to the app's health checks.</summary>
public static class ZaichikHealthChecksBuilderExtensions
{
    /// <summary>
    /// Adds a <see cref="ZaichikHealthCheck"/> of the singleton <see cref="ZaichikClient"/> registered by
    /// <c>AddZaichikClient</c>: Healthy when connected, Degraded while connecting or reconnecting,
    /// <paramref name="failureStatus"/> (default Unhealthy) when the client is closed.
    /// </summary>
    /// <param name="builder">The app's health checks, from <c>services.AddHealthChecks()</c>.</param>
    /// <param name="name">The check's name in reports. Default <c>"zaichik"</c>.</param>
    /// <param name="failureStatus">The status reported for a closed client. Default <see cref="HealthStatus.Unhealthy"/>.</param>
    /// <param name="tags">Tags to filter checks by, for example <c>"ready"</c>.</param>
    /// <param name="timeout">How long the check may run. Default: no limit of its own (it never waits).</param>
    public static IHealthChecksBuilder AddZaichikHealthCheck(
        this IHealthChecksBuilder builder, string name = "zaichik", HealthStatus? failureStatus = null, IEnumerable<string>? tags = null, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return builder.Add(new HealthCheckRegistration(
            name, static provider => new ZaichikHealthCheck(provider.GetRequiredService<ZaichikClient>()), failureStatus, tags, timeout));
    }
}
