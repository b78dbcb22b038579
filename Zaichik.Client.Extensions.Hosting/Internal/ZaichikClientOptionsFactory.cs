using Microsoft.Extensions.Options;

namespace Zaichik.Client.Extensions.Hosting.Internal;

/// <summary>
/// Starts every <see cref="ZaichikClientOptions"/> from fresh defaults passed through the registration's seed. Fresh
/// matters: the configuration binder writes into nested option objects in place, so none may be shared.
/// </summary>
internal sealed class ZaichikClientOptionsFactory(
    Func<ZaichikClientOptions, ZaichikClientOptions> seed,
    IEnumerable<IConfigureOptions<ZaichikClientOptions>> setups,
    IEnumerable<IPostConfigureOptions<ZaichikClientOptions>> postConfigures,
    IEnumerable<IValidateOptions<ZaichikClientOptions>> validations)
    : OptionsFactory<ZaichikClientOptions>(setups, postConfigures, validations)
{
    protected override ZaichikClientOptions CreateInstance(string name) =>
        seed(new ZaichikClientOptions { Reconnect = new ZaichikReconnectOptions() });
}
