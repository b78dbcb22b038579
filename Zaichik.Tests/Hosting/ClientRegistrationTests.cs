using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Zaichik.Client;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Hosting;

public sealed class ClientRegistrationTests
{
    [Fact]
    public async Task Options_bound_from_configuration_reach_the_client()
    {
        var host = HostingFixture.BuildHost(new Dictionary<string, string?>
        {
            ["Host"] = "broker.example",
            ["Port"] = "9123",
            ["Servers:0"] = "broker-2.example:9124",
            ["Servers:1"] = "[::1]:9125",
            ["Token"] = "secret-token",
            ["Idempotence"] = "false",
            ["RequestTimeout"] = "00:00:07",
            ["PingInterval"] = "00:00:03",
            ["MaxPendingRequests"] = "42",
            ["Reconnect:Enabled"] = "true",
            ["Reconnect:MinDelay"] = "00:00:00.250",
            ["Reconnect:MaxDelay"] = "00:00:09",
            ["Reconnect:MaxAttempts"] = "7",
        });
        try
        {
            var options = host.Services.GetRequiredService<ZaichikClient>().Options;

            options.Host.ShouldBe("broker.example");
            options.Port.ShouldBe(9123);
            options.Servers.ShouldBe(["broker-2.example:9124", "[::1]:9125"]);
            options.Token.ShouldBe("secret-token");
            options.Idempotence.ShouldBeFalse();
            options.RequestTimeout.ShouldBe(TimeSpan.FromSeconds(7));
            options.PingInterval.ShouldBe(TimeSpan.FromSeconds(3));
            options.MaxPendingRequests.ShouldBe(42);
            options.Reconnect.MinDelay.ShouldBe(TimeSpan.FromMilliseconds(250));
            options.Reconnect.MaxDelay.ShouldBe(TimeSpan.FromSeconds(9));
            options.Reconnect.MaxAttempts.ShouldBe(7);
            options.LoggerFactory.ShouldBeSameAs(host.Services.GetRequiredService<ILoggerFactory>(), "the client logs through the app's logging");
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
    }

    [Fact]
    public async Task Binding_leaves_the_shared_default_options_untouched()
    {
        var host = HostingFixture.BuildHost(new Dictionary<string, string?> { ["Reconnect:MaxAttempts"] = "3", ["Servers:0"] = "broker-2.example:8889" });
        try
        {
            host.Services.GetRequiredService<IOptions<ZaichikClientOptions>>().Value.Reconnect.MaxAttempts.ShouldBe(3);

            ZaichikClientOptions.Default.Reconnect.MaxAttempts.ShouldBe(0);
            ZaichikClientOptions.Default.Servers.ShouldBeEmpty();
            new ZaichikClientOptions().Reconnect.MaxAttempts.ShouldBe(0);
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
    }

    [Fact]
    public async Task Options_can_be_given_in_code()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddZaichikClient(options => options with { Host = "10.1.2.3", Port = 7001, Reconnect = new ZaichikReconnectOptions { MaxAttempts = 2 } });
        await using var provider = services.BuildServiceProvider();

        var options = provider.GetRequiredService<ZaichikClient>().Options;

        options.Host.ShouldBe("10.1.2.3");
        options.Port.ShouldBe(7001);
        options.Reconnect.MaxAttempts.ShouldBe(2);
    }

    [Theory]
    [InlineData("Port", "0", "Port")]
    [InlineData("Port", "70000", "Port")]
    [InlineData("Servers:0", "broker-2.example", "Servers[0] ('broker-2.example') must be host:port")]
    [InlineData("Reconnect:MinDelay", "00:00:01", "Reconnect:MaxDelay")]
    [InlineData("MaxHeadersSize", "-1", "MaxHeadersSize")]
    [InlineData("RequestTimeout", "-00:00:01", "RequestTimeout")]
    public async Task Invalid_options_fail_the_start_with_a_message_naming_the_option(string key, string value, string named)
    {
        var settings = HostingFixture.Broker(HostingFixture.UnusedPort());
        settings[key] = value;
        var host = HostingFixture.BuildHost(settings);
        try
        {
            var failure = await Should.ThrowAsync<OptionsValidationException>(() => host.StartAsync());

            failure.Message.ShouldContain(named);
        }
        finally
        {
            host.Dispose();
        }
    }

    [Fact]
    public async Task A_key_that_names_no_option_fails_the_start()
    {
        var host = HostingFixture.BuildHost(new Dictionary<string, string?> { ["Prot"] = "9000" });
        try
        {
            var failure = await Should.ThrowAsync<InvalidOperationException>(() => host.StartAsync());

            failure.Message.ShouldContain("Prot");
        }
        finally
        {
            host.Dispose();
        }
    }

    [Fact]
    public async Task The_app_starts_while_the_broker_is_down_and_the_client_keeps_trying()
    {
        var host = HostingFixture.BuildHost(HostingFixture.Broker(HostingFixture.UnusedPort()));
        try
        {
            await host.StartAsync().WaitAsync(TimeSpan.FromSeconds(5));

            host.Services.GetRequiredService<ZaichikClient>().ConnectionState
                .ShouldBeOneOf(ZaichikConnectionState.Connecting, ZaichikConnectionState.Reconnecting);
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
    }

    [Fact]
    public async Task The_client_is_one_singleton_disposed_with_the_provider()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddZaichikClient(new ConfigurationBuilder().AddInMemoryCollection(HostingFixture.Broker(HostingFixture.UnusedPort())).Build());
        var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<ZaichikClient>();

        provider.GetRequiredService<ZaichikClient>().ShouldBeSameAs(client);
        using (var scope = provider.CreateScope())
        {
            scope.ServiceProvider.GetRequiredService<ZaichikClient>().ShouldBeSameAs(client);
        }

        await provider.DisposeAsync();

        client.ConnectionState.ShouldBe(ZaichikConnectionState.Closed, "the container disposes the client it created");
    }

    [Fact]
    public async Task The_client_connects_when_the_host_starts_before_anything_uses_it()
    {
        await using var server = await TestServer.StartAsync();
        var host = HostingFixture.BuildHost(HostingFixture.Broker(server.Port));
        try
        {
            await host.StartAsync();

            await TestServer.EventuallyAsync(() => server.State.Server().Connections == 1, "the client connected on start");
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
    }
}
