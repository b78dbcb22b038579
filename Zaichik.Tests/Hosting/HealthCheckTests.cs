using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Zaichik.Client;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Hosting;

public sealed class HealthCheckTests
{
    [Fact]
    public async Task Healthy_when_connected_to_a_running_broker()
    {
        await using var server = await TestServer.StartAsync();
        var host = BuildHost(server.Port);
        try
        {
            await host.StartAsync();
            var client = host.Services.GetRequiredService<ZaichikClient>();
            await TestServer.EventuallyAsync(() => client.ConnectionState == ZaichikConnectionState.Connected, "the client connected");

            var entry = await CheckAsync(host);

            entry.Status.ShouldBe(HealthStatus.Healthy, entry.Description);
            entry.Description.ShouldBe($"Zaichik at 127.0.0.1:{server.Port} is Connected");
            entry.Data["state"].ShouldBe("Connected");
            entry.Data["port"].ShouldBe(server.Port);
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
    }

    [Fact]
    public async Task Degraded_while_the_broker_cannot_be_reached()
    {
        var port = HostingFixture.UnusedPort();
        var host = BuildHost(port);
        try
        {
            await host.StartAsync();

            var entry = await CheckAsync(host);

            entry.Status.ShouldBe(HealthStatus.Degraded, entry.Description);
            entry.Description.ShouldStartWith($"Zaichik at 127.0.0.1:{port} is ");
            entry.Data["state"].ShouldBeOneOf("Connecting", "Reconnecting");
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
    }

    [Fact]
    public async Task Unhealthy_once_the_client_is_closed()
    {
        await using var server = await TestServer.StartAsync();
        var host = BuildHost(server.Port);
        try
        {
            await host.StartAsync();
            await host.Services.GetRequiredService<ZaichikClient>().DisposeAsync();

            var entry = await CheckAsync(host);

            entry.Status.ShouldBe(HealthStatus.Unhealthy, entry.Description);
            entry.Description.ShouldBe($"Zaichik at 127.0.0.1:{server.Port} is Closed");
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
    }

    [Fact]
    public async Task A_closed_client_reports_the_registrations_failure_status()
    {
        var host = BuildHost(HostingFixture.UnusedPort(), failureStatus: HealthStatus.Degraded);
        try
        {
            await host.StartAsync();
            await host.Services.GetRequiredService<ZaichikClient>().DisposeAsync();

            (await CheckAsync(host)).Status.ShouldBe(HealthStatus.Degraded);
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
    }

    private static IHost BuildHost(int port, HealthStatus? failureStatus = null) =>
        HostingFixture.BuildHost(HostingFixture.Broker(port), services => services.AddHealthChecks().AddZaichikHealthCheck(failureStatus: failureStatus));

    private static async Task<HealthReportEntry> CheckAsync(IHost host)
    {
        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        report.Entries.Keys.ShouldBe(["zaichik"]);
        return report.Entries["zaichik"];
    }
}
