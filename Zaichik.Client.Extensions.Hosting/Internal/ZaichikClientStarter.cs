using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Zaichik.Client.Extensions.Hosting.Internal;

/// <summary>
/// Creates the singleton client when the host starts, so it is connecting before the first request needs it rather
/// than from then on. Creating it never waits for the broker.
/// </summary>
internal sealed class ZaichikClientStarter(IServiceProvider services) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        services.GetRequiredService<ZaichikClient>();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
