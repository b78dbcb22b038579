namespace Zaichik.Cli.Infrastructure;

/// <summary>The tool's exit codes (docs/cli.md).</summary>
internal static class ExitCodes
{
    /// <summary>The verb did what it was asked.</summary>
    public const int Ok = 0;

    /// <summary>The operation failed: the server refused it (an Error frame or an HTTP problem), or it timed out.</summary>
    public const int Failed = 1;

    /// <summary>The command line is wrong: an unknown verb or switch, a missing or invalid value.</summary>
    public const int Usage = 2;

    /// <summary>Nothing answers at the server's host:port or at the admin URL.</summary>
    public const int Unreachable = 3;
}
