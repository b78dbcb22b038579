using System.CommandLine;
using System.Text;
using Zaichik.Cli.Infrastructure;
using Zaichik.Client;

namespace Zaichik.Cli.Commands;

/// <summary><c>zaichik pub &lt;topic&gt; [text]</c>: publishes text, a file's bytes or stdin, once or <c>--count</c> times.</summary>
internal static class PubCommand
{
    private const string Placeholder = "{n}";

    /// <summary>At most this many publishes of a <c>--count</c> run wait for their Ack at once.</summary>
    private const int MaxInFlight = 1000;

    public static Command Create(VerbRunner run)
    {
        var topic = TopicArgument.Create("topic", "The topic to publish to");
        var text = new Argument<string?>("text")
        {
            Description = "The message text; without it and without --file, stdin when it is redirected",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var file = new Option<FileInfo>("--file", "-f") { Description = "Publish this file's bytes", HelpName = "path" }.AcceptExistingOnly();
        var key = new Option<string?>("--key", "-k") { Description = "The message key (compaction key)" };
        var headers = new Option<string[]>("--header", "-H")
        {
            Description = "A text header key=value; repeat for more",
            HelpName = "key=value",
            AllowMultipleArgumentsPerToken = false,
        };
        headers.Validators.Add(result =>
        {
            foreach (var token in result.Tokens)
            {
                if (token.Value.IndexOf('=') <= 0)
                {
                    result.AddError($"--header '{token.Value}' is not key=value");
                }
            }
        });
        var count = new Option<int>("--count", "-n")
        {
            Description = "Publish this many copies; {n} in the text, key and header values becomes 1, 2, 3...",
            DefaultValueFactory = _ => 1,
        };
        count.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 1)
            {
                result.AddError("--count must be at least 1");
            }
        });
        var rate = new Option<double?>("--rate", "-r") { Description = "At most this many messages per second", HelpName = "msgs/s" };
        rate.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<double?>() is <= 0)
            {
                result.AddError("--rate must be more than 0");
            }
        });

        var command = new Command("pub", "Publish a message (text, a file, or stdin)") { topic, text, file, key, headers, count, rate };
        command.Validators.Add(result =>
        {
            if (result.GetValue(text) is not null && result.GetValue(file) is not null)
            {
                result.AddError("give the message as text or as --file, not both");
            }
        });
        command.SetAction((parse, ct) => run(parse, (context, parse, ct) => RunAsync(
            context,
            parse.GetRequiredValue(topic),
            parse.GetValue(text),
            parse.GetValue(file),
            parse.GetValue(key),
            parse.GetValue(headers) ?? [],
            parse.GetValue(count),
            parse.GetValue(rate),
            ct), ct));
        return command;
    }

    private static async Task<int> RunAsync(
        CliContext context, string topic, string? text, FileInfo? file, string? key, string[] headers, int count, double? rate,
        CancellationToken cancellationToken)
    {
        var payload = await ReadPayloadAsync(context, text, file, cancellationToken);
        // {n} is replaced only in text given on the command line; file and stdin bytes are sent as they are.
        var template = text is not null && count > 1 && text.Contains(Placeholder, StringComparison.Ordinal) ? text : null;

        await using var client = await context.ConnectAsync(cancellationToken);
        var pacer = new Pacer(context.Time, rate);
        var sends = new Queue<Task<PublishResult>>();
        var results = new List<PublishResult>(count);
        for (var n = 1; n <= count; n++)
        {
            await pacer.WaitForTurnAsync(n - 1, cancellationToken);
            var body = template is null ? payload : Encoding.UTF8.GetBytes(Fill(template, n));
            var messageKey = key is null ? null : Fill(key, n);
            var keyBytes = messageKey is null ? (ReadOnlyMemory<byte>?)null : Encoding.UTF8.GetBytes(messageKey);
            sends.Enqueue(client.PublishAsync(topic, body, keyBytes, Headers(headers, n), cancellationToken).AsTask());
            if (sends.Count >= MaxInFlight)
            {
                results.Add(await sends.Dequeue());
            }
        }

        while (sends.Count > 0)
        {
            results.Add(await sends.Dequeue());
        }

        if (count == 1)
        {
            var result = results[0];
            await context.Out.WriteLineAsync(result.Duplicate
                ? $"duplicate of sequence {result.Sequence} in {topic}: dropped"
                : $"published to {topic} at sequence {result.Sequence}");
            return ExitCodes.Ok;
        }

        var stored = results.Where(r => !r.Duplicate).Select(r => r.Sequence).ToList();
        var duplicates = results.Count - stored.Count;
        var range = stored.Count == 0 ? "none stored" : $"sequences {stored.Min()}-{stored.Max()}";
        await context.Out.WriteLineAsync($"published {count} messages to {topic}: {stored.Count} stored ({range}), {duplicates} duplicates dropped");
        return ExitCodes.Ok;
    }

    private static async Task<byte[]> ReadPayloadAsync(CliContext context, string? text, FileInfo? file, CancellationToken cancellationToken)
    {
        if (text is not null)
        {
            return Encoding.UTF8.GetBytes(text);
        }

        if (file is not null)
        {
            return await File.ReadAllBytesAsync(file.FullName, cancellationToken);
        }

        if (context.Stdin() is { } input)
        {
            await using var stdin = input;
            using var buffer = new MemoryStream();
            await stdin.CopyToAsync(buffer, cancellationToken);
            return buffer.ToArray();
        }

        throw CliException.Usage("pub needs the message: give it as text, --file PATH, or on stdin");
    }

    private static ZaichikHeaders? Headers(string[] pairs, int n)
    {
        if (pairs.Length == 0)
        {
            return null;
        }

        var headers = new ZaichikHeaders();
        foreach (var pair in pairs)
        {
            var equals = pair.IndexOf('=');
            headers.Add(pair[..equals], Fill(pair[(equals + 1)..], n));
        }

        return headers;
    }

    private static string Fill(string template, int n) =>
        template.Replace(Placeholder, n.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
}
