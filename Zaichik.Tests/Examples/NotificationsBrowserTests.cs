using System.Net.Http.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Zaichik.Examples.Notifications;
using Zaichik.Server.Hosting;
using Zaichik.Tests.Admin;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Examples;

/// <summary>
/// The notifications demo in real headless Chromium: the built TypeScript client in pages of the demo app, over the broker's
/// WebSocket listener. Two tabs are two devices of one user.
/// </summary>
public sealed class NotificationsBrowserTests
{
    [Fact]
    public async Task Every_tab_of_a_user_gets_each_notification_missed_ones_come_when_a_tab_opens_and_unacknowledged_ones_again()
    {
        var options = new NotificationsOptions { AckWait = TimeSpan.FromSeconds(10), ClientScripts = await TypeScriptClient.BuildAsync() };

        await using var app = NotificationsApp.Build(options, "http://127.0.0.1:0");
        await app.StartAsync();
        var appUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(broker => broker with
        {
            Listeners = new ListenerOptions { WebSocket = new WebSocketListenerOptions { Url = "http://127.0.0.1:0/ws", AllowedOrigins = [appUrl] } },
        }, time);
        options.BrokerPort = server.Port;
        options.WebSocketUrl = server.State.Server().Listeners.Single(listener => listener.Kind == "websocket").Address;
        using var http = new HttpClient { BaseAddress = new Uri(appUrl) };
        var topic = NotificationsApp.TopicOf("alice");

        // Two tabs: both show each notification.
        var phone = await OpenAsync(appUrl);
        var laptop = await OpenAsync(appUrl);
        (await http.PostAsJsonAsync("/notify", new { user = "alice", text = "Your order shipped" })).EnsureSuccessStatusCode();
        await phone.WaitAsync("the phone shows the notification", "t => [...document.querySelectorAll('#notifications .text')].some(e => e.textContent === t)", "Your order shipped");
        await laptop.WaitAsync("the laptop shows the notification", "t => [...document.querySelectorAll('#notifications .text')].some(e => e.textContent === t)", "Your order shipped");
        await laptop.ScreenshotAsync("notifications-two-tabs.png");
        phone.PageErrors.ShouldBeEmpty();

        // Every tab closed: what is sent meanwhile waits in the user's group, and the next tab shows it.
        await phone.DisposeAsync();
        await laptop.DisposeAsync();
        await TestServer.EventuallyAsync(() => server.State.Groups(topic).SingleOrDefault() is { Members: 0 }, "no device of alice is connected");
        (await http.PostAsJsonAsync("/notify", new { user = "alice", text = "Sent while you were away" })).EnsureSuccessStatusCode();
        var tablet = await OpenAsync(appUrl);
        await tablet.WaitAsync("the returning tab shows what was sent meanwhile", "t => [...document.querySelectorAll('#notifications .text')].some(e => e.textContent === t)", "Sent while you were away");

        // Not acknowledged within AckWait: shown again.
        (await http.PostAsJsonAsync("/notify", new { user = "alice", text = "Please confirm" })).EnsureSuccessStatusCode();
        await tablet.WaitAsync("the tab shows the new notification", "t => [...document.querySelectorAll('#notifications .text')].some(e => e.textContent === t)", "Please confirm");
        time.Advance(TimeSpan.FromSeconds(11));
        await tablet.WaitAsync("an unacknowledged notification is shown again",
            "t => [...document.querySelectorAll('#notifications li')].some(e => e.querySelector('.text').textContent === t && e.dataset.deliveries === '2')", "Please confirm");
        await tablet.ScreenshotAsync("notifications-shown-again.png");

        // Acknowledged on the tab: the group has nothing of it left to deliver.
        var pendingBefore = server.State.Groups(topic).Single().Pending;
        await tablet.Page.EvaluateFunctionAsync(
            "t => [...document.querySelectorAll('#notifications li')].find(e => e.querySelector('.text').textContent === t).querySelector('button').click()", "Please confirm");
        await TestServer.EventuallyAsync(() => server.State.Groups(topic).Single().Pending == pendingBefore - 1, "the acknowledgement committed it");
        tablet.PageErrors.ShouldBeEmpty();
        await tablet.DisposeAsync();
        await app.StopAsync();
    }

    [Fact]
    public async Task A_page_resumes_without_a_gap_after_a_broker_restart_and_a_token_that_may_not_subscribe_is_refused()
    {
        var options = new NotificationsOptions { ClientScripts = await TypeScriptClient.BuildAsync(), BrokerToken = "app-secret-0123456789" };
        await using var app = NotificationsApp.Build(options, "http://127.0.0.1:0");
        await app.StartAsync();
        var appUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        ZaichikTokenOptions[] tokens =
        [
            new() { Name = "app", Token = "app-secret-0123456789", Publish = ["notifications.*"] },
            new() { Name = "alice-device", Token = "alice-secret-0123456789", Subscribe = ["notifications.alice"] },
            new() { Name = "bob-device", Token = "bob-secret-0123456789", Subscribe = ["notifications.bob"] },
        ];
        var webSocketPort = Processes.BrokerProcess.FreePort();
        await using var server = await TestServer.StartAsync(broker => broker with
        {
            Tokens = tokens,
            Listeners = new ListenerOptions { WebSocket = new WebSocketListenerOptions { Url = $"http://127.0.0.1:{webSocketPort}/ws", AllowedOrigins = [appUrl] } },
        });
        options.BrokerPort = server.Port;
        options.WebSocketUrl = $"ws://127.0.0.1:{webSocketPort}/ws";
        using var http = new HttpClient { BaseAddress = new Uri(appUrl) };

        await using var page = await OpenAsync(appUrl, "alice-secret-0123456789");
        (await http.PostAsJsonAsync("/notify", new { user = "alice", text = "before the restart" })).EnsureSuccessStatusCode();
        await page.WaitAsync("the page shows the first notification", "t => [...document.querySelectorAll('#notifications .text')].some(e => e.textContent === t)", "before the restart");

        await server.StopAsync();
        await page.WaitAsync("the page noticed the broker was gone", "() => document.getElementById('status').dataset.state === 'reconnecting'");
        await server.StartAgainAsync();
        await page.WaitAsync("the page reconnected", "() => document.getElementById('status').dataset.state === 'connected'");
        (await http.PostAsJsonAsync("/notify", new { user = "alice", text = "after the restart" })).EnsureSuccessStatusCode();
        await page.WaitAsync("the page shows the notification sent after the restart", "t => [...document.querySelectorAll('#notifications .text')].some(e => e.textContent === t)", "after the restart");
        (await page.Page.EvaluateFunctionAsync<string[]>("() => [...document.querySelectorAll('#notifications li')].map(e => e.dataset.sequence)"))
            .Order().ToArray().ShouldBe(new[] { "1", "2" }, "each notification once, none missing");
        await page.ScreenshotAsync("notifications-after-restart.png");

        // The browser logs each reconnect attempt refused while the broker was down; nothing else may go wrong.
        page.PageErrors.Where(error => !error.Contains("ERR_CONNECTION_REFUSED", StringComparison.Ordinal)).ShouldBeEmpty();

        await using var intruder = await DashboardBrowser.OpenAsync($"{appUrl}/?user=alice&token=bob-secret-0123456789");
        await intruder.WaitAsync("a token that may not subscribe to alice's notifications is refused", "() => document.getElementById('status').dataset.code === 'NotAuthorized'");
        (await intruder.TextAsync("#status"))!.ShouldContain("NotAuthorized");
        await intruder.ScreenshotAsync("notifications-not-authorized.png");
        await app.StopAsync();
    }

    private static async Task<DashboardBrowser> OpenAsync(string appUrl, string? token = null)
    {
        var page = await DashboardBrowser.OpenAsync($"{appUrl}/?user=alice" + (token is null ? "" : $"&token={token}"));
        await page.WaitAsync("the page connected to the broker", "() => document.getElementById('status').dataset.state === 'connected'");
        return page;
    }
}
