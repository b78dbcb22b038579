using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Zaichik.Client;
using Zaichik.Client.Extensions.Hosting.Internal;

// The conventional namespace for Add* extensions, so they are found without an extra using.
namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers one <see cref="ZaichikClient"/> per service provider.</summary>
public static class ZaichikServiceCollectionExtensions
{
    /// <summary>
    /// Registers a singleton <see cref="ZaichikClient"/> whose <see cref="ZaichikClientOptions"/> are bound from
    /// <paramref name="configuration"/> (typically <c>builder.Configuration.GetSection("Zaichik")</c>): <c>Host</c>,
    /// <c>Port</c>, <c>Token</c>, <c>RequestTimeout</c>, <c>Reconnect:MinDelay</c> and every other simple member, time
    /// spans written as <c>"00:00:05"</c>. A key that names no option fails the start, so a typo is not silently ignored.
    /// The options are validated when the host starts. The client is created with <see cref="ZaichikClient.Create"/>
    /// when the host starts: the app starts even while the broker is down, and the client connects in the background
    /// and reconnects. The container disposes it. Returns <paramref name="services"/>.
    /// </summary>
    public static IServiceCollection AddZaichikClient(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<ZaichikClientOptions>().Bind(configuration, binder => binder.ErrorOnUnknownConfiguration = true);
        return services.AddZaichikClientCore(static options => options);
    }

    /// <summary>
    /// Registers a singleton <see cref="ZaichikClient"/> whose options <paramref name="configure"/> returns from the
    /// defaults, for example <c>options =&gt; options with { Host = "broker", Port = 8889 }</c> (the options are a record with
    /// init-only members, so they are changed with <c>with</c>, not assigned). Otherwise as
    /// <see cref="AddZaichikClient(IServiceCollection, IConfiguration)"/>. Returns <paramref name="services"/>.
    /// </summary>
    public static IServiceCollection AddZaichikClient(this IServiceCollection services, Func<ZaichikClientOptions, ZaichikClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        return services.AddZaichikClientCore(configure);
    }

    private static IServiceCollection AddZaichikClientCore(this IServiceCollection services, Func<ZaichikClientOptions, ZaichikClientOptions> seed)
    {
        services.AddOptions<ZaichikClientOptions>().ValidateOnStart();
        services.Replace(ServiceDescriptor.Singleton<IOptionsFactory<ZaichikClientOptions>>(provider => new ZaichikClientOptionsFactory(
            seed,
            provider.GetServices<IConfigureOptions<ZaichikClientOptions>>(),
            provider.GetServices<IPostConfigureOptions<ZaichikClientOptions>>(),
            provider.GetServices<IValidateOptions<ZaichikClientOptions>>())));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ZaichikClientOptions>, ZaichikClientOptionsValidator>());
        services.TryAddSingleton(static provider =>
        {
            var options = provider.GetRequiredService<IOptions<ZaichikClientOptions>>().Value;
            return ZaichikClient.Create(options with { LoggerFactory = options.LoggerFactory ?? provider.GetService<ILoggerFactory>() });
        });
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, ZaichikClientStarter>());
        return services;
    }
}
