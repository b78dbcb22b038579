using Microsoft.Extensions.Hosting;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Hosting;

/// <summary>
/// Opens the topics before the listener accepts anyone, and closes them (committing every log) only after
/// the listener and all connections have stopped: <see cref="StoppedAsync"/> runs after every hosted
/// service's StopAsync, Kestrel's included.
/// </summary>
internal sealed class BrokerLifecycle(TopicRegistry registry) : IHostedLifecycleService
{
    public async Task StartingAsync(CancellationToken cancellationToken) =>
        await registry.OpenExistingAsync(cancellationToken).ConfigureAwait(false);

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppedAsync(CancellationToken cancellationToken) => await registry.DisposeAsync().ConfigureAwait(false);
}
