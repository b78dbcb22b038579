using System.CommandLine;

namespace Zaichik.Cli.Commands;

/// <summary>A topic name argument. A word starting with '-' is a mistyped switch, not a topic.</summary>
internal static class TopicArgument
{
    public static Argument<string> Create(string name, string description)
    {
        var argument = new Argument<string>(name) { Description = description };
        argument.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && result.Tokens[0].Value.StartsWith('-'))
            {
                result.AddError($"unknown option '{result.Tokens[0].Value}'");
            }
        });
        return argument;
    }
}
