using Microsoft.Extensions.Hosting;
using Zaichik.Server.Storage;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Hosting;

/// <summary>
/// Reads the topic catalog before the listener accepts anyone, and closes the topics (committing every open log) only
/// after the listener and all connections have stopped: <see cref="StoppedAsync"/> runs after every hosted service's
/// StopAsync, Kestrel's included. The data folder's lock is released last.
/// </summary>
internal sealed class BrokerLifecycle(TopicRegistry registry, DataFolderLock folderLock) : IHostedLifecycleService
{
    public async Task StartingAsync(CancellationToken cancellationToken) =>
        await registry.OpenExistingAsync(cancellationToken).ConfigureAwait(false);

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppedAsync(CancellationToken cancellationToken)
    {
        try
        {
            await registry.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            folderLock.Dispose();
        }
    }
}
