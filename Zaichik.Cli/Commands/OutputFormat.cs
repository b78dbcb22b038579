using System.CommandLine;

namespace Zaichik.Cli.Commands;

/// <summary><c>--output text|json</c>.</summary>
internal static class OutputFormat
{
    public const string Text = "text";
    public const string Json = "json";

    public static Option<string> CreateOption(string jsonDescription)
    {
        var option = new Option<string>("--output", "-o")
        {
            Description = $"text (default) or json: {jsonDescription}",
            DefaultValueFactory = _ => Text,
        };
        option.AcceptOnlyFromAmong(Text, Json);
        return option;
    }
}
