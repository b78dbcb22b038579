using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;
using Zaichik.Client;

namespace Zaichik.Examples.Notifications;

/// <summary>Where the app finds the broker and the TypeScript client, and how long a notification waits for an acknowledgement.</summary>
public sealed class NotificationsOptions
{
    public string BrokerHost { get; set; } = "127.0.0.1";

    public int BrokerPort { get; set; } = 8889;

    /// <summary>The token the app publishes and creates topics with, for a broker that requires tokens; null for none.</summary>
    public string? BrokerToken { get; set; }

    /// <summary>The broker's WebSocket listener as pages reach it.</summary>
    public string WebSocketUrl { get; set; } = "ws://127.0.0.1:8891/ws";

    /// <summary>How long a notification waits for any of the user's devices to acknowledge it before it is shown again.</summary>
    public TimeSpan AckWait { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long the broker keeps a user's notifications for devices that come back.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(1);

    /// <summary>The built TypeScript client (<c>clients/typescript/dist</c>); found from the app's folder upwards when null.</summary>
    public string? ClientScripts { get; set; }
}

/// <summary>
/// The web app: pages and the built TypeScript client as static files, <c>GET /config</c> for the page, and
/// <c>POST /notify</c> which publishes to <c>notifications.{user}</c> through the .NET client.
/// </summary>
public static class NotificationsApp
{
    /// <summary>The topic of one user's notifications.</summary>
    public static string TopicOf(string user) => $"notifications.{user}";

    public static WebApplication Build(NotificationsOptions options, string urls)
    {
        options.ClientScripts ??= FindClientScripts();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory, WebRootPath = "wwwroot" });
        builder.WebHost.UseUrls(urls);
        builder.Services.AddSingleton(options);
        var app = builder.Build();

        app.UseDefaultFiles();
        app.UseStaticFiles();
        if (options.ClientScripts is { } scripts && Directory.Exists(scripts))
        {
            app.UseStaticFiles(new StaticFileOptions { FileProvider = new PhysicalFileProvider(scripts), RequestPath = "/lib/zaichik" });
        }

        // The page asks for its settings first: the user's topic is created then (with retention), before any tab subscribes.
        app.MapGet("/config", async (string? user, NotificationsOptions current, CancellationToken cancellationToken) =>
        {
            if (!IsUser(user))
            {
                return Results.Problem(statusCode: 400, title: "user must be 1 to 64 letters, digits, '.', '-' or '_'");
            }

            await using var client = await ConnectAsync(current, cancellationToken);
            await EnsureTopicAsync(client, user!, current, cancellationToken);
            return Results.Json(new { webSocketUrl = current.WebSocketUrl, ackWaitMs = (long)current.AckWait.TotalMilliseconds, topic = TopicOf(user!) });
        });

        app.MapPost("/notify", async (NotifyRequest request, NotificationsOptions current, CancellationToken cancellationToken) =>
        {
            if (!IsUser(request.User) || string.IsNullOrWhiteSpace(request.Text))
            {
                return Results.Problem(statusCode: 400, title: "A notification needs a user (letters, digits, '.', '-', '_') and a text");
            }

            await using var client = await ConnectAsync(current, cancellationToken);
            await EnsureTopicAsync(client, request.User, current, cancellationToken);
            var published = await client.PublishAsync(TopicOf(request.User), request.Text, cancellationToken: cancellationToken);
            return Results.Json(new { topic = TopicOf(request.User), sequence = published.Sequence });
        });

        return app;
    }

    private static Task<ZaichikClient> ConnectAsync(NotificationsOptions options, CancellationToken cancellationToken) =>
        ZaichikClient.ConnectAsync(new ZaichikClientOptions { Host = options.BrokerHost, Port = options.BrokerPort, Token = options.BrokerToken }, cancellationToken).AsTask();

    private static bool IsUser(string? user) => !string.IsNullOrWhiteSpace(user) && Zaichik.Protocol.ConsumerName.Validate(user) is null;

    private static Task EnsureTopicAsync(ZaichikClient client, string user, NotificationsOptions options, CancellationToken cancellationToken) =>
        client.CreateTopicAsync(TopicOf(user), new TopicOptions { RetentionTtl = options.Retention }, cancellationToken).AsTask();

    /// <summary>The built TypeScript client, looked for from the app's folder up to the repository's root.</summary>
    private static string? FindClientScripts()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            var candidate = Path.Combine(folder.FullName, "clients", "typescript", "dist");
            if (File.Exists(Path.Combine(candidate, "index.js")))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>The body of <c>POST /notify</c>.</summary>
    public sealed record NotifyRequest(string User, string Text);
}
