using System.CommandLine;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;
using Zaichik.Cli.Infrastructure;
using Zaichik.Client;

namespace Zaichik.Cli.Commands;

/// <summary><c>zaichik sub &lt;topic&gt;</c>: prints messages and commits each after printing it.</summary>
internal static class SubCommand
{
    /// <summary>Payloads are mostly JSON or text read by people and jq: quotes and non-ASCII stay as they are.</summary>
    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Create(VerbRunner run)
    {
        var topic = TopicArgument.Create("topic", "The topic to subscribe to");
        var from = new Option<string>("--from")
        {
            Description = $"Where to start: {StartPositions.Help}",
            HelpName = "position",
            DefaultValueFactory = _ => "retained",
        };
        from.Validators.Add(result =>
        {
            if (!StartPositions.TryParse(result.GetValueOrDefault<string>() ?? "", TimeProvider.System, out _, out var problem))
            {
                result.AddError(problem!);
            }
        });
        from.CompletionSources.Add("retained", "latest", "seq:", "time:-5m");
        var durable = new Option<string?>("--durable", "-d") { Description = "A durable consumer name: resumes after its last commit", HelpName = "name" };
        var count = new Option<int?>("--count", "-n") { Description = "Stop after this many messages (default: until Ctrl+C)" };
        count.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int?>() is < 1)
            {
                result.AddError("--count must be at least 1");
            }
        });
        var prefetch = new Option<int>("--prefetch") { Description = "Messages in flight before a commit", DefaultValueFactory = _ => 1 };
        prefetch.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 1)
            {
                result.AddError("--prefetch must be at least 1");
            }
        });
        var ack = new Option<Zaichik.Protocol.AckPolicy>("--ack")
        {
            Description = "explicit: commit each message after printing it; none: no commits, the server sends as fast as this reads",
            DefaultValueFactory = _ => Zaichik.Protocol.AckPolicy.Explicit,
        };
        var group = new Option<string?>("--group", "-g")
        {
            Description = "Join this consumer group: its members share the topic's messages, each committed on its own; redelivered when not committed in time",
            HelpName = "name",
        };
        var ackWait = new Option<TimeSpan?>("--ack-wait")
        {
            Description = "Redeliver a message not committed within this (with --group the group's; default: the server's, 30s); like 500ms, 10s, 5m",
            HelpName = "duration",
            CustomParser = result =>
            {
                var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
                if (Durations.TryParse(text, out var duration) && duration >= TimeSpan.FromMilliseconds(1))
                {
                    return duration;
                }

                result.AddError($"'{text}' is not a positive duration; write it like 500ms, 10s or 5m");
                return null;
            },
        };
        var maxDeliver = new Option<int?>("--max-deliver") { Description = "After this many deliveries a message goes to --dead-letter (or is dropped)" };
        maxDeliver.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int?>() is < 1)
            {
                result.AddError("--max-deliver must be at least 1");
            }
        });
        var deadLetter = new Option<string?>("--dead-letter") { Description = "The topic messages go to after --max-deliver deliveries", HelpName = "topic" };
        var output = OutputFormat.CreateOption("one JSON object per message and line");

        var command = new Command("sub", "Subscribe and print messages, committing each")
        {
            topic, from, durable, count, prefetch, ack, group, ackWait, maxDeliver, deadLetter, output,
        };
        command.Validators.Add(result =>
        {
            var redelivery = result.GetValue(ackWait) is not null || result.GetValue(maxDeliver) is not null || result.GetValue(deadLetter) is not null;
            if (result.GetValue(group) is not null && result.GetValue(durable) is not null)
            {
                result.AddError("--group and --durable are exclusive: a group is durable already");
            }
            else if (redelivery && result.GetValue(durable) is not null)
            {
                result.AddError("--ack-wait, --max-deliver and --dead-letter with --durable make a consumer group: use --group instead of --durable");
            }
        });
        command.SetAction((parse, ct) => run(parse, (context, parse, ct) =>
        {
            StartPositions.TryParse(parse.GetValue(from) ?? "retained", context.Time, out var start, out _);
            var options = new SubscribeOptions
            {
                From = start, DurableName = parse.GetValue(durable), Prefetch = parse.GetValue(prefetch), AckPolicy = parse.GetValue(ack),
                Group = parse.GetValue(group),
                AckWait = parse.GetValue(ackWait),
                MaxDeliver = parse.GetValue(maxDeliver),
                DeadLetterTopic = parse.GetValue(deadLetter),
            };
            return RunAsync(context, parse.GetRequiredValue(topic), options, parse.GetValue(count), parse.GetValue(output) == OutputFormat.Json, ct);
        }, ct));
        return command;
    }

    private static async Task<int> RunAsync(
        CliContext context, string topic, SubscribeOptions options, int? count, bool json, CancellationToken cancellationToken)
    {
        ZaichikClient client;
        try
        {
            client = await context.ConnectAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return ExitCodes.Ok;
        }

        await using var connected = client;
        var received = 0;
        try
        {
            await using var subscription = await client.SubscribeAsync(topic, options, cancellationToken);
            await foreach (var message in subscription.WithCancellation(cancellationToken))
            {
                await context.Out.WriteLineAsync(json ? Json(message) : Text(message));
                await context.Out.FlushAsync(cancellationToken);
                await client.CommitAsync(message, cancellationToken);
                if (++received >= count)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Ctrl+C: what was printed was committed; stopping is success.
        }

        if (client.IsConnected)
        {
            // A durable consumer's next run starts after what this one printed: wait until the server has the commits.
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await client.ConfirmCommitsAsync(timeout.Token);
        }

        return ExitCodes.Ok;
    }

    /// <summary><c>sequence  key=K  name=value ...  payload</c>, tab-separated; the key and headers only when present.</summary>
    internal static string Text(ZaichikMessage message)
    {
        var line = new StringBuilder();
        line.Append(message.Sequence);
        if (message.DeliveryCount > 1)
        {
            line.Append("\tdelivery=").Append(message.DeliveryCount);
        }

        if (message.KeyText is { } key)
        {
            line.Append("\tkey=").Append(key);
        }

        foreach (var header in message.Headers)
        {
            line.Append('\t').Append(header.Key).Append('=').Append(header.IsText ? header.Text : Convert.ToBase64String(header.Value.Span));
        }

        line.Append('\t').Append(Utf8.IsValid(message.Payload.Span) ? message.PayloadText : $"({message.Payload.Length} bytes, not UTF-8)");
        return line.ToString();
    }

    /// <summary>One JSON object: sequence, timestamp, key, headers, payload (text when valid UTF-8, else base64, as its encoding says).</summary>
    internal static string Json(ZaichikMessage message)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, JsonOptions))
        {
            json.WriteStartObject();
            json.WriteString("topic", message.Topic);
            json.WriteNumber("sequence", message.Sequence);
            json.WriteNumber("deliveryCount", message.DeliveryCount);
            json.WriteString("timestamp", message.Timestamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
            json.WriteString("key", message.KeyText);

            json.WriteStartObject("headers");
            foreach (var header in message.Headers)
            {
                json.WriteString(header.Key, header.IsText ? header.Text : Convert.ToBase64String(header.Value.Span));
            }

            json.WriteEndObject();
            var text = Utf8.IsValid(message.Payload.Span);
            json.WriteString("payload", text ? message.PayloadText : Convert.ToBase64String(message.Payload.Span));
            json.WriteString("payloadEncoding", text ? "text" : "base64");
            json.WriteNumber("size", message.Payload.Length);
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
