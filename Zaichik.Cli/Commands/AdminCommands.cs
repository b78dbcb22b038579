using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using Spectre.Console.Rendering;
using Zaichik.Cli.Infrastructure;

namespace Zaichik.Cli.Commands;

/// <summary><c>topics</c>, <c>topic</c>, <c>consumers</c> and <c>cluster</c>: read the admin HTTP API (docs/admin-api.md) and print tables.</summary>
internal static class AdminCommands
{
    public static Command CreateTopics(VerbRunner run)
    {
        var prefix = new Option<string?>("--prefix", "-p") { Description = "Only topics whose name starts with this" };
        var output = OutputFormat.CreateOption("the API's JSON array of topic summaries");
        var command = new Command("topics", "List the topics (admin API)") { prefix, output };
        command.SetAction((parse, ct) => run(parse, (context, parse, ct) =>
            TopicsAsync(context, parse.GetValue(prefix), parse.GetValue(output) == OutputFormat.Json, ct), ct));
        return command;
    }

    public static Command CreateTopic(VerbRunner run)
    {
        var name = TopicArgument.Create("name", "The topic");
        var output = OutputFormat.CreateOption("the API's JSON topic detail");
        var command = new Command("topic", "Show one topic: settings, sequences, consumers (admin API)") { name, output };
        command.SetAction((parse, ct) => run(parse, (context, parse, ct) =>
            TopicAsync(context, parse.GetRequiredValue(name), parse.GetValue(output) == OutputFormat.Json, ct), ct));
        return command;
    }

    public static Command CreateConsumers(VerbRunner run)
    {
        var topic = TopicArgument.Create("topic", "The topic whose durable consumers to list");
        var output = OutputFormat.CreateOption("the API's JSON array of consumers");
        var command = new Command("consumers", "List a topic's durable consumers and their lag (admin API)") { topic, output };
        command.SetAction((parse, ct) => run(parse, (context, parse, ct) =>
            ConsumersAsync(context, parse.GetRequiredValue(topic), parse.GetValue(output) == OutputFormat.Json, ct), ct));
        return command;
    }

    public static Command CreateCluster(VerbRunner run)
    {
        var output = OutputFormat.CreateOption("the API's JSON cluster view");
        var command = new Command("cluster", "Show the cluster: the leader, the term, and each node's role, log position and lag (admin API)") { output };
        command.SetAction((parse, ct) => run(parse, (context, parse, ct) => ClusterAsync(context, parse.GetValue(output) == OutputFormat.Json, ct), ct));

        var stepDownOutput = OutputFormat.CreateOption("the API's JSON answer");
        var stepDown = new Command("step-down", "Make the leader (the node --admin names) give up leadership; the nodes elect a leader, its clients reconnect (admin API)")
        {
            stepDownOutput,
        };
        stepDown.SetAction((parse, ct) => run(parse, (context, parse, ct) => StepDownAsync(context, parse.GetValue(stepDownOutput) == OutputFormat.Json, ct), ct));
        command.Subcommands.Add(stepDown);
        return command;
    }

    private static async Task<int> ClusterAsync(CliContext context, bool json, CancellationToken cancellationToken)
    {
        using var api = new AdminApi(context.Settings);
        var (raw, cluster) = await api.GetAsync("api/cluster", cancellationToken);
        if (json)
        {
            await context.Out.WriteLineAsync(raw.Trim());
            return ExitCodes.Ok;
        }

        await context.Out.WriteLineAsync(
            $"leader {Text(cluster, "leader")}, term {Text(cluster, "term")}, asked node {Text(cluster, "nodeId")}, its snapshot at entry {Text(cluster, "snapshotIndex")}");
        var table = new Table().AddColumns("Node", "Role", "Last index", "Applied", "Lag", "Clients at", "Problem");
        if (cluster.TryGetProperty("members", out var members) && members.ValueKind == JsonValueKind.Array)
        {
            foreach (var member in members.EnumerateArray())
            {
                table.AddRow(
                    Cell(Text(member, "id")), Cell(Text(member, "role")), Cell(Text(member, "lastIndex")), Cell(Text(member, "appliedIndex")),
                    Cell(Text(member, "lag")), Cell(Text(member, "clientEndpoint")), Cell(Text(member, "error")));
            }
        }

        context.Console.Write(table);
        return ExitCodes.Ok;
    }

    private static async Task<int> StepDownAsync(CliContext context, bool json, CancellationToken cancellationToken)
    {
        using var api = new AdminApi(context.Settings);
        var (raw, answer) = await api.PostAsync("api/cluster/step-down", cancellationToken);
        await context.Out.WriteLineAsync(json
            ? raw.Trim()
            : $"node {Text(answer, "nodeId")} stepped down as leader of term {Text(answer, "term")}; the nodes elect a leader (zaichik cluster shows it)");
        return ExitCodes.Ok;
    }

    private static async Task<int> TopicsAsync(CliContext context, string? prefix, bool json, CancellationToken cancellationToken)
    {
        using var api = new AdminApi(context.Settings);
        var topics = new List<JsonElement>();
        string? firstPage = null;
        var pages = 0;
        string? after = null;
        // Pages until an empty one: the server caps a page at its own Admin:MaxTopicsPerPage.
        while (true)
        {
            var query = $"api/topics?prefix={Uri.EscapeDataString(prefix ?? "")}"
                + (after is null ? "" : $"&after={Uri.EscapeDataString(after)}");
            var (raw, page) = await api.GetAsync(query, cancellationToken);
            firstPage ??= raw;
            if (page.ValueKind != JsonValueKind.Array || page.GetArrayLength() == 0)
            {
                break;
            }

            pages++;
            topics.AddRange(page.EnumerateArray());
            var last = Text(topics[^1], "name");
            if (last == after)
            {
                break;
            }

            after = last;
        }

        if (json)
        {
            // One page is printed as the API sent it; more are joined into one array.
            await context.Out.WriteLineAsync(pages <= 1 && firstPage is not null ? firstPage.Trim() : JsonSerializer.Serialize(topics));
            return ExitCodes.Ok;
        }

        if (topics.Count == 0)
        {
            await context.Out.WriteLineAsync(prefix is null ? "no topics" : $"no topics starting with '{prefix}'");
            return ExitCodes.Ok;
        }

        var table = new Table().AddColumns("Topic", "State", "Retention", "Window", "Durability", "First", "Last", "Messages", "Size", "Subscribers", "Consumers", "Max lag");
        foreach (var topic in topics)
        {
            table.AddRow(
                Cell(Text(topic, "name")),
                Cell(Text(topic, "state")),
                Cell(Duration(topic, "retentionTtlMs")),
                Cell(Duration(topic, "compactionWindowMs")),
                Cell(Text(topic, "durability")),
                Cell(Text(topic, "firstSequence")),
                Cell(Text(topic, "lastSequence")),
                Cell(Text(topic, "messageCount")),
                Cell(Bytes(topic, "bytesOnDisk")),
                Cell(Text(topic, "subscribers")),
                Cell(Text(topic, "consumerCount")),
                Cell(Text(topic, "maxLag")));
        }

        context.Console.Write(table);
        return ExitCodes.Ok;
    }

    private static async Task<int> TopicAsync(CliContext context, string name, bool json, CancellationToken cancellationToken)
    {
        using var api = new AdminApi(context.Settings);
        var (raw, topic) = await api.GetAsync($"api/topics/{Uri.EscapeDataString(name)}", cancellationToken);
        if (json)
        {
            await context.Out.WriteLineAsync(raw);
            return ExitCodes.Ok;
        }

        var settings = new Table().AddColumns("Field", "Value");
        settings.AddRow(Cell("name"), Cell(Text(topic, "name")));
        settings.AddRow(Cell("state"), Cell(Text(topic, "state") + (Text(topic, "quarantineReason") is var reason and not "-" ? $" ({reason})" : "")));
        settings.AddRow(Cell("retention"), Cell(Duration(topic, "retentionTtlMs")));
        settings.AddRow(Cell("window"), Cell(Duration(topic, "compactionWindowMs")));
        settings.AddRow(Cell("durability"), Cell(Text(topic, "durability")));
        settings.AddRow(Cell("commit interval"), Cell(Duration(topic, "commitIntervalMs")));
        settings.AddRow(Cell("sequences"), Cell($"{Text(topic, "firstSequence")}-{Text(topic, "lastSequence")}"));
        settings.AddRow(Cell("messages"), Cell(Text(topic, "messageCount")));
        settings.AddRow(Cell("on disk"), Cell(Bytes(topic, "bytesOnDisk")));
        settings.AddRow(Cell("subscribers"), Cell(Text(topic, "subscribers")));
        settings.AddRow(Cell("consumers"), Cell(Text(topic, "consumerCount")));
        settings.AddRow(Cell("max lag"), Cell(Text(topic, "maxLag")));
        settings.AddRow(Cell("in"), Cell($"{Text(topic, "messagesIn")} messages, {Bytes(topic, "bytesIn")}"));
        settings.AddRow(Cell("out"), Cell($"{Text(topic, "messagesOut")} messages, {Bytes(topic, "bytesOut")}"));
        settings.AddRow(Cell("duplicates dropped"), Cell(Text(topic, "duplicatesDropped")));
        settings.AddRow(Cell("holes"), Cell(Text(topic, "holes")));
        context.Console.Write(settings);

        if (topic.TryGetProperty("consumers", out var consumers) && consumers.ValueKind == JsonValueKind.Array && consumers.GetArrayLength() > 0)
        {
            context.Console.Write(ConsumerTable(consumers.EnumerateArray(), withTopic: false));
        }

        if (topic.TryGetProperty("holeRanges", out var holes) && holes.ValueKind == JsonValueKind.Array && holes.GetArrayLength() > 0)
        {
            var table = new Table().AddColumns("Lost from", "to", "Reason");
            foreach (var hole in holes.EnumerateArray())
            {
                table.AddRow(Cell(Text(hole, "first")), Cell(Text(hole, "last")), Cell(Text(hole, "reason")));
            }

            context.Console.Write(table);
        }

        return ExitCodes.Ok;
    }

    private static async Task<int> ConsumersAsync(CliContext context, string topic, bool json, CancellationToken cancellationToken)
    {
        using var api = new AdminApi(context.Settings);
        var (raw, consumers) = await api.GetAsync($"api/consumers?topic={Uri.EscapeDataString(topic)}", cancellationToken);
        if (json)
        {
            await context.Out.WriteLineAsync(raw);
            return ExitCodes.Ok;
        }

        if (consumers.ValueKind != JsonValueKind.Array || consumers.GetArrayLength() == 0)
        {
            await context.Out.WriteLineAsync($"topic {topic} has no durable consumers");
            return ExitCodes.Ok;
        }

        context.Console.Write(ConsumerTable(consumers.EnumerateArray(), withTopic: true));
        return ExitCodes.Ok;
    }

    private static Table ConsumerTable(IEnumerable<JsonElement> consumers, bool withTopic)
    {
        var table = new Table();
        if (withTopic)
        {
            table.AddColumn("Topic");
        }

        table.AddColumns("Consumer", "Committed", "Lag", "Connected", "Lost");
        foreach (var consumer in consumers)
        {
            var cells = new List<IRenderable>();
            if (withTopic)
            {
                cells.Add(Cell(Text(consumer, "topic")));
            }

            cells.Add(Cell(Text(consumer, "name")));
            cells.Add(Cell(Text(consumer, "committedSequence")));
            cells.Add(Cell(Text(consumer, "lag")));
            cells.Add(Cell(Text(consumer, "connected")));
            cells.Add(Cell(Text(consumer, "lost")));
            table.AddRow(cells);
        }

        return table;
    }

    private static Text Cell(string text) => new(text);

    /// <summary>A field as text; <c>-</c> when it is missing or null (not known).</summary>
    private static string Text(JsonElement element, string name)
    {
        if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(name, out var value))
        {
            return "-";
        }

        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString() ?? "-",
            JsonValueKind.Number => value.GetRawText(),
            JsonValueKind.True => "yes",
            JsonValueKind.False => "no",
            _ => "-",
        };
    }

    private static string Duration(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var ms)
            ? Durations.Format(ms)
            : "-";

    private static string Bytes(JsonElement element, string name)
    {
        if (!element.TryGetProperty(name, out var value) || value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var bytes))
        {
            return "-";
        }

        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double size = bytes;
        var unit = 0;
        while (size >= 1024 && unit < units.Length - 1)
        {
            size /= 1024;
            unit++;
        }

        return unit == 0 ? $"{bytes} B" : string.Create(CultureInfo.InvariantCulture, $"{size:0.#} {units[unit]}");
    }
}
