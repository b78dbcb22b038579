namespace Zaichik.Cli.Infrastructure;

/// <summary>A failure the tool reports as one line on stderr with <see cref="ExitCode"/>.</summary>
internal sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;

    public static CliException Usage(string message) => new(ExitCodes.Usage, message);

    public static CliException Failed(string message) => new(ExitCodes.Failed, message);

    public static CliException Unreachable(string message) => new(ExitCodes.Unreachable, message);
}
