using Microsoft.Extensions.Options;

namespace Zaichik.Client.Extensions.Hosting.Internal;

/// <summary>Runs <see cref="ZaichikClientOptions.Validate"/> and reports the option it names.</summary>
internal sealed class ZaichikClientOptionsValidator : IValidateOptions<ZaichikClientOptions>
{
    public ValidateOptionsResult Validate(string? name, ZaichikClientOptions options)
    {
        try
        {
            options.Validate();
            return ValidateOptionsResult.Success;
        }
        catch (ArgumentException e)
        {
            return ValidateOptionsResult.Fail($"Zaichik client option {e.ParamName ?? "(unnamed)"} is invalid: {e.Message}");
        }
    }
}
