using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;
using Zaichik.Server.Security;
using Zaichik.Server.State;
using Zaichik.Server.Topics;

namespace Zaichik.Server.Admin;

/// <summary>
/// The admin listener's endpoints (docs/admin-api.md): the JSON API over the <see cref="BrokerState"/>, health probes,
/// the dashboard's files and, mapped by the host, <c>/metrics</c>. Every error is an RFC 7807 problem response. When
/// tokens are configured, <c>/api</c> and <c>/metrics</c> need one with the admin right; a token is never logged.
/// </summary>
internal static partial class AdminEndpoints
{
    /// <summary>The dashboard's files, embedded in this assembly under <c>Zaichik.Dashboard.&lt;file name&gt;</c>.</summary>
    private const string DashboardResourcePrefix = "Zaichik.Dashboard.";

    /// <summary>The API's JSON settings: camelCase, enums by name, and only the types of <see cref="AdminJsonContext"/>.</summary>
    public static JsonSerializerOptions Json => AdminJsonContext.Default.Options;

    /// <summary>Refuses <c>/api</c> and <c>/metrics</c> without a token that has the admin right, when tokens are configured.</summary>
    public static void UseAdminAuthentication(this WebApplication app)
    {
        var authenticator = app.Services.GetRequiredService<TokenAuthenticator>();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Zaichik.Server.Admin");
        app.Use(async (context, next) =>
        {
            var path = context.Request.Path;
            if (authenticator.Required && (path.StartsWithSegments("/api") || path.StartsWithSegments("/metrics")))
            {
                var header = context.Request.Headers.Authorization.ToString();
                var token = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header["Bearer ".Length..].Trim() : null;
                var grant = string.IsNullOrEmpty(token) ? null : authenticator.Authenticate(token);
                if (grant is null)
                {
                    if (!string.IsNullOrEmpty(token))
                    {
                        // As on the client port: the attempt is logged, never the token.
                        LogRefused(logger, context.Connection.RemoteIpAddress?.ToString(), path, "the token is not known to this server");
                    }

                    context.Response.Headers.WWWAuthenticate = "Bearer realm=\"zaichik\"";
                    await Problem(StatusCodes.Status401Unauthorized, "unauthorized", "Unauthorized",
                        string.IsNullOrEmpty(token)
                            ? "this server requires a token: send Authorization: Bearer <token> of a token with the admin right"
                            : "the token is not known to this server").ExecuteAsync(context).ConfigureAwait(false);
                    return;
                }

                if (!grant.MayAdminister)
                {
                    LogRefused(logger, context.Connection.RemoteIpAddress?.ToString(), path, $"token '{grant.Name}' does not have the admin right");
                    await Problem(StatusCodes.Status403Forbidden, "forbidden", "Forbidden",
                        $"token '{grant.Name}' does not have the admin right (Admin: true in its token options)").ExecuteAsync(context).ConfigureAwait(false);
                    return;
                }
            }

            await next(context).ConfigureAwait(false);
        });
    }

    public static void MapAdminEndpoints(this WebApplication app, AdminOptions options)
    {
        var api = app.MapGroup("/api");
        api.MapGet("/server", (BrokerState state) => Ok(state.Server()));

        api.MapGet("/topics", (BrokerState state, HttpRequest request) =>
        {
            if (!TryLimit(request, options.MaxTopicsPerPage, options.MaxTopicsPerPage, out var limit, out var problem))
            {
                return problem;
            }

            return Ok(state.Topics(NonEmpty(request.Query["prefix"]), NonEmpty(request.Query["after"]), limit));
        });

        api.MapGet("/topics/{name}", async (BrokerState state, string name, CancellationToken cancellationToken) =>
            await state.TopicAsync(name, cancellationToken).ConfigureAwait(false) is { } detail ? Ok(Detail(detail)) : TopicNotFound(name));

        api.MapGet("/topics/{name}/messages", async (BrokerState state, string name, HttpRequest request, CancellationToken cancellationToken) =>
        {
            if (!TryLimit(request, 20, options.MaxPeekMessages, out var limit, out var problem))
            {
                return problem;
            }

            long? from = null;
            if (NonEmpty(request.Query["from"]) is { } fromText)
            {
                if (!long.TryParse(fromText, out var sequence) || sequence < 1)
                {
                    return Invalid($"from '{fromText}' is not a sequence (1 or more)");
                }

                from = sequence;
            }

            var encoding = NonEmpty(request.Query["encoding"]) ?? "auto";
            if (encoding is not ("auto" or "text" or "base64"))
            {
                return Invalid($"encoding '{encoding}' is not auto, text or base64");
            }

            try
            {
                return await state.PeekAsync(name, from, limit, encoding, cancellationToken).ConfigureAwait(false) is { } page
                    ? Ok(page)
                    : TopicNotFound(name);
            }
            catch (TopicException failure)
            {
                return FromTopicException(failure);
            }
        });

        api.MapPost("/topics", async (BrokerState state, HttpRequest request, CancellationToken cancellationToken) =>
        {
            CreateTopicRequest? body;
            try
            {
                body = await JsonSerializer.DeserializeAsync(request.Body, AdminJsonContext.Default.CreateTopicRequest, cancellationToken).ConfigureAwait(false);
            }
            catch (JsonException exception)
            {
                return Invalid($"the body is not a topic to create: {exception.Message}");
            }

            if (body?.Name is not { Length: > 0 } name)
            {
                return Invalid("the body needs a name: { \"name\": \"orders\", \"retentionTtlMs\": 3600000, \"compactionWindowMs\": 0, \"durability\": \"Interval\" }");
            }

            var durability = Durability.ServerDefault;
            if (body.Durability is { Length: > 0 } durabilityText
                && (!Enum.TryParse(durabilityText, ignoreCase: true, out durability) || durability == Durability.ServerDefault || !Enum.IsDefined(durability)))
            {
                return Invalid($"durability '{durabilityText}' is not Always, Interval or Memory");
            }

            var existed = state.Registry.TryGet(name, out _);
            var settings = new TopicSettings(body.RetentionTtlMs ?? 0, body.CompactionWindowMs ?? 0, durability, body.CommitIntervalMs ?? 0, body.MaxMessages ?? 0, body.MaxBytes ?? 0,
                body.KeepLatestPerKey ?? false, body.TombstoneRetentionMs ?? 0);
            try
            {
                Topic topic;
                if (request.HttpContext.RequestServices.GetService<Cluster.ClusterNode>() is { } cluster)
                {
                    // On a cluster the topic is created through the Raft log, on every node, and only by the leader.
                    if (!cluster.IsLeader)
                    {
                        return NotLeader(cluster);
                    }

                    await cluster.CreateTopicAsync(name, settings, cancellationToken).ConfigureAwait(false);
                    topic = state.Registry.TryGet(name, out var created) ? created : throw new TopicException(ErrorCode.StorageFailure, $"topic '{name}' was created but is not here");
                }
                else
                {
                    topic = await state.Registry.CreateAsync(name, settings, cancellationToken).ConfigureAwait(false);
                }

                var detail = await state.TopicAsync(topic.Name, cancellationToken).ConfigureAwait(false);
                return Ok(Detail(detail!), existed ? StatusCodes.Status200OK : StatusCodes.Status201Created);
            }
            catch (TopicException failure)
            {
                return FromTopicException(failure);
            }
            catch (ReplicationUnavailableException failure)
            {
                return Problem(StatusCodes.Status503ServiceUnavailable, "no-leader", "No leader", $"{failure.Message}; try again");
            }
        });

        // scope=local: this node alone (what the other nodes ask); otherwise every member's position and lag, asked of its admin API.
        api.MapGet("/cluster", async (IServiceProvider services, HttpRequest request, CancellationToken cancellationToken) =>
            services.GetService<Cluster.ClusterNode>() is not { } cluster
                ? Problem(StatusCodes.Status404NotFound, "cluster-off", "Not a cluster node", "this broker runs as a single node (Cluster:NodeId is not set)")
                : request.Query["scope"] == "local"
                    ? Ok(cluster.Describe())
                    : Ok(await cluster.DescribeClusterAsync(request.Headers.Authorization.ToString(), cancellationToken).ConfigureAwait(false)));

        // The leader gives up leadership; the nodes elect one (its clients reconnect and are redirected).
        api.MapPost("/cluster/step-down", async (IServiceProvider services, CancellationToken cancellationToken) =>
        {
            if (services.GetService<Cluster.ClusterNode>() is not { } cluster)
            {
                return Problem(StatusCodes.Status404NotFound, "cluster-off", "Not a cluster node", "this broker runs as a single node (Cluster:NodeId is not set)");
            }

            var term = cluster.Describe().Term;
            return await cluster.StepDownAsync(cancellationToken).ConfigureAwait(false)
                ? Ok(new StepDownResult(cluster.NodeId, term))
                : NotLeader(cluster);
        });

        api.MapGet("/connections", (BrokerState state) => Ok(state.Connections()));

        api.MapGet("/consumers", async (BrokerState state, HttpRequest request, CancellationToken cancellationToken) =>
        {
            if (NonEmpty(request.Query["topic"]) is not { } topic)
            {
                return Ok(state.Consumers());
            }

            return await state.TopicAsync(topic, cancellationToken).ConfigureAwait(false) is { } detail
                ? Ok(detail.Consumers)
                : TopicNotFound(topic);
        });

        api.MapGet("/groups", async (BrokerState state, HttpRequest request, CancellationToken cancellationToken) =>
        {
            if (NonEmpty(request.Query["topic"]) is not { } topic)
            {
                return Ok(state.Groups());
            }

            return await state.TopicAsync(topic, cancellationToken).ConfigureAwait(false) is { } detail
                ? Ok(detail.Groups)
                : TopicNotFound(topic);
        });

        api.MapFallback((HttpRequest request) =>
            Problem(StatusCodes.Status404NotFound, "not-found", "Not found", $"there is no admin endpoint {request.Method} {request.Path}; docs/admin-api.md lists them"));

        app.MapGet("/healthz", () => Results.Text("ok\n"));
        app.MapGet("/readyz", (IHostApplicationLifetime lifetime) =>
            lifetime.ApplicationStarted.IsCancellationRequested && !lifetime.ApplicationStopping.IsCancellationRequested
                ? Results.Text("ready\n")
                : Problem(StatusCodes.Status503ServiceUnavailable, "not-ready", "Not ready",
                    lifetime.ApplicationStopping.IsCancellationRequested ? "the broker is stopping" : "the broker is starting"));

        app.MapGet("/", () => Dashboard("index.html"));
        app.MapGet("/dashboard/{file}", (string file) => Dashboard(file));
    }

    /// <summary>An RFC 7807 problem response.</summary>
    public static IResult Problem(int status, string code, string title, string detail) =>
        Results.Json(
            new ProblemBody($"https://zaichik.dev/problems/{code}", title, status, detail, code),
            AdminJsonContext.Default.ProblemBody,
            "application/problem+json",
            status);

    /// <summary>A JSON answer written by the generated serializer of <see cref="AdminJsonContext"/>.</summary>
    private static IResult Ok<T>(T value, int? status = null) =>
        Results.Json(value, (JsonTypeInfo<T>)Json.GetTypeInfo(typeof(T)), statusCode: status);

    private static JsonNode? Node<T>(T value) => JsonSerializer.SerializeToNode(value, (JsonTypeInfo<T>)Json.GetTypeInfo(typeof(T)));

    /// <summary>A change asked of a cluster node that does not lead: 421 with where the leader is, when known.</summary>
    private static IResult NotLeader(Cluster.ClusterNode cluster) => cluster.Leader is { } leader
        ? Problem(StatusCodes.Status421MisdirectedRequest, "not-leader", "Not the leader",
            $"cluster node {cluster.NodeId} does not lead; node {leader.NodeId} does, and takes clients at {leader.ClientEndpoint}; send this to its admin API")
        : Problem(StatusCodes.Status503ServiceUnavailable, "no-leader", "No leader", $"cluster node {cluster.NodeId} does not lead and knows no leader now; try again shortly");

    private static IResult Invalid(string detail) => Problem(StatusCodes.Status400BadRequest, "invalid-request", "Invalid request", detail);

    private static IResult TopicNotFound(string name) =>
        Problem(StatusCodes.Status404NotFound, "topic-not-found", "Topic not found", $"there is no topic '{name}'");

    private static IResult FromTopicException(TopicException failure) => failure.Code switch
    {
        ErrorCode.InvalidTopicName or ErrorCode.InvalidArgument => Invalid(failure.Message),
        ErrorCode.TopicSettingsConflict => Problem(StatusCodes.Status409Conflict, "topic-exists", "Topic exists with other settings", failure.Message),
        ErrorCode.TooManyTopics => Problem(StatusCodes.Status409Conflict, "too-many-topics", "Too many topics", failure.Message),
        ErrorCode.TopicNotFound => Problem(StatusCodes.Status404NotFound, "topic-not-found", "Topic not found", failure.Message),
        _ => Problem(StatusCodes.Status503ServiceUnavailable, "storage-failure", "Storage failure", failure.Message),
    };

    /// <summary>The detail as the API gives it: the topic's summary fields, then its consumers and hole ranges.</summary>
    private static JsonObject Detail(TopicDetailView detail)
    {
        var json = (JsonObject)Node(detail.Topic)!;
        json["consumers"] = Node(detail.Consumers);
        json["groups"] = Node(detail.Groups);
        json["holeRanges"] = Node(detail.HoleRanges);
        return json;
    }

    private static bool TryLimit(HttpRequest request, int defaultLimit, int maximum, out int limit, out IResult problem)
    {
        limit = defaultLimit;
        problem = Results.Empty;
        if (NonEmpty(request.Query["limit"]) is not { } text)
        {
            return true;
        }

        if (!int.TryParse(text, out limit) || limit < 1 || limit > maximum)
        {
            problem = Invalid($"limit '{text}' must be 1..{maximum}");
            return false;
        }

        return true;
    }

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private static IResult Dashboard(string file)
    {
        var stream = typeof(AdminEndpoints).Assembly.GetManifestResourceStream(DashboardResourcePrefix + file);
        if (stream is null)
        {
            return Problem(StatusCodes.Status404NotFound, "not-found", "Not found", $"the dashboard has no file '{file}'");
        }

        var contentType = Path.GetExtension(file) switch
        {
            ".html" => "text/html; charset=utf-8",
            ".js" => "text/javascript; charset=utf-8",
            ".css" => "text/css; charset=utf-8",
            ".svg" => "image/svg+xml",
            ".png" => "image/png",
            _ => "application/octet-stream",
        };
        return Results.Stream(stream, contentType);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Admin request from {Remote} to {Path} refused: {Reason}")]
    private static partial void LogRefused(ILogger logger, string? remote, string path, string reason);

    internal sealed record ProblemBody(string Type, string Title, int Status, string Detail, string Code);

    /// <summary>What <c>POST /api/cluster/step-down</c> answers: the node that stepped down, and the term it led.</summary>
    internal sealed record StepDownResult(string NodeId, long Term)
    {
        public bool SteppedDown => true;
    }

    internal sealed record CreateTopicRequest(
        string? Name, long? RetentionTtlMs, long? CompactionWindowMs, string? Durability, long? CommitIntervalMs, long? MaxMessages, long? MaxBytes,
        bool? KeepLatestPerKey, long? TombstoneRetentionMs);
}
