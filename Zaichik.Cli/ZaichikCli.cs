using System.CommandLine;
using System.Net.Http;
using Zaichik.Cli.Commands;
using Zaichik.Cli.Infrastructure;
using Zaichik.Client;

namespace Zaichik.Cli;

/// <summary>The <c>zaichik</c> command line: verbs, global options, and how failures become exit codes.</summary>
public static class ZaichikCli
{
    /// <summary>
    /// Runs one command line with the given writers. Returns the exit code: 0 ok, 1 the operation failed, 2 a usage
    /// error, 3 the server or the admin API cannot be reached. A failure is one line on <paramref name="stderr"/>,
    /// <c>zaichik: ...</c>, never a stack trace. <paramref name="cancellationToken"/> is Ctrl+C: <c>sub</c> ends with 0.
    /// </summary>
    public static Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken) =>
        RunAsync(args, stdout, stderr, StandardInput, TimeProvider.System, cancellationToken);

    internal static async Task<int> RunAsync(
        string[] args, TextWriter stdout, TextWriter stderr, Func<Stream?> stdin, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        var globals = new GlobalOptions();
        var root = new RootCommand("zaichik: publish, subscribe, create and inspect topics of a Zaichik broker, and measure it.");
        foreach (var option in globals.All)
        {
            root.Options.Add(option);
        }

        VerbRunner run = (parse, action, ct) => InvokeAsync(parse, globals, stdout, stderr, stdin, time, action, ct);
        root.Subcommands.Add(PubCommand.Create(run));
        root.Subcommands.Add(SubCommand.Create(run));
        root.Subcommands.Add(AdminCommands.CreateTopics(run));
        root.Subcommands.Add(AdminCommands.CreateTopic(run));
        root.Subcommands.Add(AdminCommands.CreateConsumers(run));
        root.Subcommands.Add(CreateCommand.Create(run));
        root.Subcommands.Add(BenchCommand.Create(run));

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            var verb = parse.CommandResult.Command == root ? "zaichik" : $"zaichik {parse.CommandResult.Command.Name}";
            await stderr.WriteLineAsync($"zaichik: {parse.Errors[0].Message} (see '{verb} --help')");
            return ExitCodes.Usage;
        }

        var configuration = new InvocationConfiguration
        {
            Output = stdout,
            Error = stderr,
            EnableDefaultExceptionHandler = false,
            ProcessTerminationTimeout = null,
        };
        return await parse.InvokeAsync(configuration, cancellationToken);
    }

    private static Stream? StandardInput() => Console.IsInputRedirected ? Console.OpenStandardInput() : null;

    private static async Task<int> InvokeAsync(
        ParseResult parse, GlobalOptions globals, TextWriter stdout, TextWriter stderr, Func<Stream?> stdin, TimeProvider time,
        VerbAction action, CancellationToken cancellationToken)
    {
        string message;
        int exitCode;
        try
        {
            var context = new CliContext(stdout, stderr, stdin, globals.Read(parse), time);
            return await action(context, parse, cancellationToken);
        }
        catch (CliException e)
        {
            (exitCode, message) = (e.ExitCode, e.Message);
        }
        catch (ZaichikServerException e)
        {
            (exitCode, message) = (ExitCodes.Failed, $"{e.Code}: {e.ServerMessage}");
        }
        catch (ZaichikException e)
        {
            (exitCode, message) = (ExitCodes.Failed, e.Message);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            (exitCode, message) = (ExitCodes.Failed, "interrupted");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or HttpRequestException)
        {
            (exitCode, message) = (ExitCodes.Failed, e.Message);
        }

        await stdout.FlushAsync(CancellationToken.None);
        await stderr.WriteLineAsync($"zaichik: {message}");
        return exitCode;
    }
}

/// <summary>What a verb does once the command line has parsed.</summary>
internal delegate Task<int> VerbAction(CliContext context, ParseResult parse, CancellationToken cancellationToken);

/// <summary>Runs a verb's action with the global settings, turning failures into one stderr line and an exit code.</summary>
internal delegate Task<int> VerbRunner(ParseResult parse, VerbAction action, CancellationToken cancellationToken);
