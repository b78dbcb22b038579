using System.CommandLine;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using System.Reflection;
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

        // The default prints the entry assembly's version, which in-process (tests) is not this tool's.
        foreach (var version in root.Options.OfType<VersionOption>())
        {
            version.Action = new PrintVersionAction(stdout);
        }

        VerbRunner run = (parse, action, ct) => InvokeAsync(parse, globals, stdout, stderr, stdin, time, action, ct);
        root.Subcommands.Add(PubCommand.Create(run));
        root.Subcommands.Add(SubCommand.Create(run));
        root.Subcommands.Add(AdminCommands.CreateTopics(run));
        root.Subcommands.Add(AdminCommands.CreateTopic(run));
        root.Subcommands.Add(AdminCommands.CreateConsumers(run));
        root.Subcommands.Add(AdminCommands.CreateCluster(run));
        root.Subcommands.Add(CreateCommand.Create(run));
        root.Subcommands.Add(BenchCommand.Create(run));

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            var verb = string.Join(' ', VerbPath(parse.CommandResult, root).Prepend("zaichik"));
            var problem = string.Join(' ', parse.Errors[0].Message.Split((char[])['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries).Select(part => part.Trim()));
            await stderr.WriteLineAsync($"zaichik: {problem} (see '{verb} --help')");
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

    /// <summary>This tool's version, as the packages are versioned (Directory.Build.props), without the commit.</summary>
    internal static string Version { get; } =
        typeof(ZaichikCli).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "unknown";

    /// <summary>The verbs from the root down to <paramref name="result"/>'s: <c>bench</c>, <c>sub</c>.</summary>
    private static IEnumerable<string> VerbPath(CommandResult result, RootCommand root)
    {
        var verbs = new Stack<string>();
        for (SymbolResult? current = result; current is CommandResult command && command.Command != root; current = command.Parent)
        {
            verbs.Push(command.Command.Name);
        }

        return verbs;
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
        catch (ArgumentException e) when (e.ParamName is { } parameter && e.Message.EndsWith($" (Parameter '{parameter}')", StringComparison.Ordinal))
        {
            // A message or key the client refuses (too large for a frame): what it says, without .NET's parameter name.
            (exitCode, message) = (ExitCodes.Failed, e.Message[..^$" (Parameter '{parameter}')".Length]);
        }
        catch (Exception e)
        {
            // Files, the admin API's HTTP, arguments the client refuses: the message says it; a stack trace would not help.
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

/// <summary><c>--version</c>: prints <see cref="ZaichikCli.Version"/>.</summary>
internal sealed class PrintVersionAction(TextWriter stdout) : SynchronousCommandLineAction
{
    public override int Invoke(ParseResult parseResult)
    {
        stdout.WriteLine(ZaichikCli.Version);
        return ExitCodes.Ok;
    }
}
