using System.CommandLine;
using System.CommandLine.Parsing;
using Zaichik.Cli.Infrastructure;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Cli.Commands;

/// <summary><c>zaichik create &lt;topic&gt;</c>: creates a topic through the client protocol (CreateTopic).</summary>
internal static class CreateCommand
{
    public static Command Create(VerbRunner run)
    {
        var topic = TopicArgument.Create("topic", "The topic to create");
        var retention = DurationOption("--retention", "How long each message is kept (0: not retained)");
        var window = DurationOption("--window", "Compaction window: a key seen less than this ago is a duplicate (0: off)");
        var durability = new Option<string>("--durability")
        {
            Description = "always | interval | memory (default: the server's)",
            HelpName = "mode",
        };
        durability.AcceptOnlyFromAmong(StringComparer.OrdinalIgnoreCase, "always", "interval", "memory");
        var commitInterval = DurationOption("--commit-interval", "With --durability interval: how often the log is committed (0: the server's)");

        var maxMessages = CountOption("--max-messages", "Most messages kept; the oldest go first (0: no limit)");
        var maxBytes = CountOption("--max-bytes", "Most bytes of log kept, counted in log pages; the oldest messages go first (0: no limit)");
        var keepLatest = new Option<bool>("--keep-latest")
        {
            Description = "Keep only the newest message of each key (log compaction); a tombstone deletes a key",
        };
        var tombstoneRetention = DurationOption("--tombstone-retention", "With --keep-latest: how long a tombstone stays (0: the server's, 24h unless configured)");

        var command = new Command("create", "Create a topic (or check that it exists with these settings)")
        {
            topic, retention, window, durability, commitInterval, maxMessages, maxBytes, keepLatest, tombstoneRetention,
        };
        command.SetAction((parse, ct) => run(parse, (context, parse, ct) =>
        {
            var options = new TopicOptions
            {
                RetentionTtl = parse.GetValue(retention),
                CompactionWindow = parse.GetValue(window),
                Durability = parse.GetValue(durability)?.ToLowerInvariant() switch
                {
                    "always" => Durability.Always,
                    "interval" => Durability.Interval,
                    "memory" => Durability.Memory,
                    _ => Durability.ServerDefault,
                },
                CommitInterval = parse.GetValue(commitInterval),
                MaxMessages = parse.GetValue(maxMessages),
                MaxBytes = parse.GetValue(maxBytes),
                KeepLatestPerKey = parse.GetValue(keepLatest),
                TombstoneRetention = parse.GetValue(tombstoneRetention),
            };
            return RunAsync(context, parse.GetRequiredValue(topic), options, ct);
        }, ct));
        return command;
    }

    private static Option<long> CountOption(string name, string description)
    {
        var option = new Option<long>(name) { Description = description, HelpName = "n", DefaultValueFactory = _ => 0 };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<long>() < 0)
            {
                result.AddError($"{name} must be 0 (no limit) or more");
            }
        });
        return option;
    }

    internal static Option<TimeSpan> DurationOption(string name, string description) => new(name)
    {
        Description = $"{description}; like 500ms, 10s, 5m, 1h, 7d",
        HelpName = "duration",
        CustomParser = ParseDuration,
        DefaultValueFactory = _ => TimeSpan.Zero,
    };

    private static TimeSpan ParseDuration(ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        if (Durations.TryParse(text, out var duration) && duration >= TimeSpan.Zero)
        {
            return duration;
        }

        result.AddError($"'{text}' is not a duration; write it like 500ms, 10s, 5m, 1h or 7d");
        return TimeSpan.Zero;
    }

    private static async Task<int> RunAsync(CliContext context, string topic, TopicOptions options, CancellationToken cancellationToken)
    {
        if (options.CommitInterval > TimeSpan.Zero && options.Durability != Durability.Interval)
        {
            throw CliException.Usage("--commit-interval needs --durability interval");
        }

        if (options.TombstoneRetention > TimeSpan.Zero && !options.KeepLatestPerKey)
        {
            throw CliException.Usage("--tombstone-retention needs --keep-latest");
        }

        await using var client = await context.ConnectAsync(cancellationToken);
        await client.CreateTopicAsync(topic, options, cancellationToken);
        var durability = options.Durability == Durability.ServerDefault ? "the server's" : options.Durability.ToString().ToLowerInvariant();
        await context.Out.WriteLineAsync(
            $"topic {topic}: retention {Durations.Format(options.RetentionTtl)}, window {Durations.Format(options.CompactionWindow)}, durability {durability}"
            + (options.MaxMessages > 0 ? $", at most {options.MaxMessages} messages" : "")
            + (options.MaxBytes > 0 ? $", at most {options.MaxBytes} bytes" : "")
            + (options.KeepLatestPerKey
                ? $", latest per key (tombstones {(options.TombstoneRetention > TimeSpan.Zero ? Durations.Format(options.TombstoneRetention) : "the server's")})"
                : ""));
        return ExitCodes.Ok;
    }
}
