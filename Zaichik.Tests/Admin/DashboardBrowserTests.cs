using System.Diagnostics;
using System.Globalization;
using Zaichik.Client;
using Zaichik.Server.Hosting;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Admin;

/// <summary>
/// The dashboard in a real headless Chromium against a real broker: what the page shows is what the broker holds.
/// Every check waits on the page's DOM with a deadline; nothing passes by sleeping.
/// </summary>
public sealed class DashboardBrowserTests
{
    private const string Topic = "dash.orders";

    // The page polls every 200 ms instead of every second, so each check settles quickly.
    private const string Query = "/?interval=200";

    private static Func<ZaichikServerOptions, ZaichikServerOptions> WithAdmin(Func<ZaichikServerOptions, ZaichikServerOptions>? more = null) =>
        options => (more ?? (o => o))(options with { Admin = options.Admin with { Url = "http://127.0.0.1:0" } });

    private static string Row(string topic) => $"[data-topic=\"{topic}\"]";

    [Fact]
    public async Task The_dashboard_shows_a_topics_rate_its_consumers_lag_its_page_and_the_connections()
    {
        var clock = Stopwatch.StartNew();
        await using var server = await TestServer.StartAsync(WithAdmin());
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync(Topic, new TopicOptions { RetentionTtl = TimeSpan.FromHours(1), CompactionWindow = TimeSpan.FromSeconds(10) });
        var adminUrl = server.Server.AdminUrl.ShouldNotBeNull("the broker was asked for an admin listener on port 0");

        await using var browser = await DashboardBrowser.OpenAsync(adminUrl + Query);
        await browser.WaitAsync($"the topic {Topic} is listed", "s => document.querySelector(s) !== null", Row(Topic));
        (await browser.TextAsync("#server-version")).ShouldNotBe("–", "the header shows the server's version");
        (await browser.ValueAsync("#server-auth")).ShouldBe("false", "no tokens are configured");

        // A steady stream of publishes: the page computes a rate from the counters it polls.
        var published = 0;
        using (var stop = new CancellationTokenSource())
        {
            var stream = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested && published < 2_000)
                {
                    var next = published + 1;
                    await publisher.PublishAsync(Topic, $"order {next}", key: $"order-{next}");
                    published = next;
                    await Task.Delay(20);
                }
            });
            await browser.WaitAsync($"{Topic} has messages coming in", "s => Number(document.querySelector(s + ' [data-field=\"rate\"]').dataset.value) > 0", Row(Topic));
            await stop.CancelAsync();
            await stream;
        }

        while (published < 100)
        {
            published++;
            await publisher.PublishAsync(Topic, $"order {published}", key: $"order-{published}");
        }

        await browser.WaitAsync($"{Topic} holds {published} messages", "(s, n) => document.querySelector(s + ' [data-field=\"messageCount\"]').dataset.value === String(n)", Row(Topic), published);

        // A durable consumer commits 40 of them, then 70: the lag shown follows.
        var consumer = await server.ConnectAsync();
        await using var reader = new MessageReader(await consumer.SubscribeAsync(Topic, new SubscribeOptions { DurableName = "billing", Prefetch = 100 }));
        var delivered = await reader.NextAsync(70);
        delivered[39].Sequence.ShouldBe(40, "a new topic numbers its messages from 1");
        await consumer.CommitAsync(delivered[39]);
        await consumer.ConfirmCommitsAsync();
        await WaitForMaxLagAsync(browser, published - 40);

        await consumer.CommitAsync(delivered[69]);
        await consumer.ConfirmCommitsAsync();
        await WaitForMaxLagAsync(browser, published - 70);
        (await browser.ValueAsync(Row(Topic) + " [data-field=\"consumerCount\"]")).ShouldBe("1");
        await browser.ScreenshotAsync("dashboard-topics.png");

        // The topic's own page: settings, consumers, recent messages and the rate chart.
        await browser.GoToHashAsync("#/topics/" + Uri.EscapeDataString(Topic));
        await browser.WaitAsync("the topic's page shows the consumer billing at 70",
            "() => document.querySelector('#consumers [data-consumer=\"billing\"] [data-field=\"committedSequence\"]')?.dataset.value === '70'");
        (await browser.TextAsync("#topic-name")).ShouldBe(Topic);
        (await browser.ValueAsync("#topic-settings [data-field=\"retentionTtlMs\"]")).ShouldBe("3600000");
        (await browser.ValueAsync("#topic-settings [data-field=\"compactionWindowMs\"]")).ShouldBe("10000");
        (await browser.ValueAsync("#topic-storage [data-field=\"firstSequence\"]")).ShouldBe("1");
        (await browser.ValueAsync("#topic-storage [data-field=\"lastSequence\"]")).ShouldBe(Str(published));
        (await browser.ValueAsync("#consumers [data-consumer=\"billing\"] [data-field=\"lag\"]")).ShouldBe(Str(published - 70));
        (await browser.ValueAsync("#consumers [data-consumer=\"billing\"] [data-field=\"connected\"]")).ShouldBe("true");

        await browser.WaitAsync("the recent messages are listed", "() => document.querySelectorAll('#messages tbody tr').length > 0");
        (await browser.CountAsync("#messages tbody tr")).ShouldBe(20, "the page shows the last 20 messages");
        (await browser.ValueAsync("#messages tbody tr:first-child [data-field=\"sequence\"]")).ShouldBe(Str(published), "the newest message comes first");
        (await browser.TextAsync("#messages tbody tr:first-child [data-field=\"payload\"]")).ShouldBe($"order {published}");
        (await browser.TextAsync("#messages tbody tr:first-child [data-field=\"key\"]")).ShouldBe($"order-{published}");

        await browser.WaitAsync("the rate chart has samples", "() => Number(document.getElementById('rate-chart').dataset.samples) > 1");
        double.Parse((await browser.Page.EvaluateExpressionAsync<string>("document.getElementById('rate-chart').dataset.peakIn"))!, CultureInfo.InvariantCulture)
            .ShouldBeGreaterThan(0, "the chart keeps the samples taken while messages came in");
        await browser.ScreenshotAsync("dashboard-topic.png");

        // The connections: the publisher's and the consumer's.
        await browser.GoToHashAsync("#/connections");
        await browser.WaitAsync("both clients are listed, the consumer with its subscription",
            "t => document.querySelectorAll('#connections tbody tr').length >= 2 && document.querySelector(`#connections [data-subscription=\"${t}\"]`) !== null", Topic);
        (await browser.TextAsync($"#connections [data-subscription=\"{Topic}\"]")).ShouldBe($"{Topic} billing");
        (await browser.TextAsync("#connections tbody tr [data-field=\"remoteAddress\"]")).ShouldStartWith("127.0.0.1:");
        await browser.ScreenshotAsync("dashboard-connections.png");

        // A consumer group on the topic: its row on the topic's page, with what it has in flight.
        var worker = await server.ConnectAsync();
        var shipping = await worker.SubscribeAsync(Topic, new SubscribeOptions { Group = "shipping", Prefetch = 5, MaxDeliver = 3 });
        await Client.ReconnectTests.ReadAsync(shipping, 5);
        await browser.GoToHashAsync("#/topics/" + Uri.EscapeDataString(Topic));
        await browser.WaitAsync("the topic's page shows the group shipping with 5 messages pending",
            "() => document.querySelector('#groups [data-group=\"shipping\"] [data-field=\"pending\"]')?.dataset.value === '5'");
        (await browser.ValueAsync("#groups [data-group=\"shipping\"] [data-field=\"members\"]")).ShouldBe("1");
        (await browser.TextAsync("#groups [data-group=\"shipping\"] [data-field=\"settings\"]"))!.ShouldContain("MaxDeliver 3");
        await browser.ScreenshotAsync("dashboard-topic-groups.png");

        (await browser.IsVisibleAsync("#error-bar")).ShouldBeFalse("no API call failed");
        browser.PageErrors.ShouldBeEmpty("the page's script raised no error");

        // An API error is shown, with the problem's detail.
        await browser.GoToHashAsync("#/topics/no.such.topic");
        await browser.WaitAsync("the error bar says the topic does not exist",
            "() => !document.getElementById('error-bar').hidden && document.getElementById('error-bar').textContent.includes(\"there is no topic 'no.such.topic'\")");
        Console.WriteLine($"dashboard browser test: {clock.Elapsed.TotalSeconds:0.0} s, {published} messages");
    }

    [Fact]
    public async Task With_tokens_the_dashboard_asks_for_one_and_shows_the_topics_after_an_admin_token()
    {
        ZaichikTokenOptions ops = new() { Name = "ops", Token = "0123456789abcdef-ops", Publish = [">"], Subscribe = [">"], Admin = true };
        ZaichikTokenOptions app = new() { Name = "app", Token = "0123456789abcdef-app", Publish = [">"], Subscribe = [">"] };
        await using var server = await TestServer.StartAsync(WithAdmin(o => o with { Tokens = [ops, app] }));
        await using (var client = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port, new ZaichikClientOptions { Token = app.Token }))
        {
            await client.CreateTopicAsync("secured.orders");
        }

        await using var browser = await DashboardBrowser.OpenAsync(server.Server.AdminUrl + Query);
        await browser.WaitAsync("it asks for a token", "() => !document.getElementById('token-form').hidden && document.getElementById('token-form').dataset.status === '401'");
        (await browser.IsVisibleAsync("#topics")).ShouldBeFalse("nothing is shown without a token");

        await browser.Page.TypeAsync("#token-input", app.Token);
        await browser.Page.ClickAsync("#token-submit");
        await browser.WaitAsync("it refuses a token without the admin right", "() => !document.getElementById('token-form').hidden && document.getElementById('token-form').dataset.status === '403'");
        (await browser.TextAsync("#token-reason") ?? "").ShouldContain("403");

        await browser.Page.TypeAsync("#token-input", ops.Token);
        await browser.Page.ClickAsync("#token-submit");
        await browser.WaitAsync("the topics show after the admin token", "s => document.querySelector(s) !== null", Row("secured.orders"));
        (await browser.IsVisibleAsync("#token-form")).ShouldBeFalse();
        (await browser.ValueAsync("#server-auth")).ShouldBe("true");
        await browser.ScreenshotAsync("dashboard-token.png");

        // The token is kept for the tab: a reload goes straight to the topics.
        await browser.Page.ReloadAsync();
        await browser.WaitAsync("the topics show again after a reload", "s => document.querySelector(s) !== null", Row("secured.orders"));
        (await browser.IsVisibleAsync("#token-form")).ShouldBeFalse("the token was kept in sessionStorage");
    }

    [Fact]
    public async Task The_cluster_page_shows_each_nodes_role_and_lag_and_a_node_that_is_down()
    {
        await using var cluster = await Cluster.InProcessCluster.StartAsync(admin: true);
        var leader = await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        var follower = (leader + 1) % cluster.Count;
        await using (var client = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port))
        {
            await client.PublishAsync("dash.cluster", "one");
        }

        await using var browser = await DashboardBrowser.OpenAsync(cluster.AdminUrl(leader).ToString().TrimEnd('/') + Query + "#/cluster");
        await browser.WaitAsync("three members, all caught up",
            "() => [...document.querySelectorAll('#members [data-member]')].length === 3"
            + " && [...document.querySelectorAll('#members [data-member] [data-field=\"lag\"]')].every(cell => cell.dataset.value === '0')");
        var leaderRow = $"#members [data-member=\"n{leader + 1}\"]";
        (await browser.ValueAsync(leaderRow + " [data-field=\"role\"]")).ShouldBe("Leader");
        (await browser.ValueAsync($"#members [data-member=\"n{follower + 1}\"] [data-field=\"role\"]")).ShouldBe("Follower");
        (await browser.TextAsync("#cluster-summary") ?? "").ShouldContain($"leader n{leader + 1}");

        // A node that is down: no figures, and why.
        await cluster.StopNodeAsync(follower);
        await browser.WaitAsync("the stopped node shows its problem",
            "s => (document.querySelector(s + ' [data-field=\"error\"]').dataset.value || '') !== ''", $"#members [data-member=\"n{follower + 1}\"]");
        (await browser.TextAsync($"#members [data-member=\"n{follower + 1}\"] [data-field=\"lag\"]")).ShouldBe("–");
        await browser.ScreenshotAsync("dashboard-cluster.png");
    }

    [Fact]
    public async Task The_cluster_page_of_a_single_node_says_it_is_not_in_a_cluster()
    {
        await using var server = await TestServer.StartAsync(WithAdmin());
        await using var browser = await DashboardBrowser.OpenAsync(server.Server.AdminUrl + Query + "#/cluster");
        await browser.WaitAsync("the page says so", "() => !document.getElementById('cluster-off').hidden");
        (await browser.IsVisibleAsync("#members")).ShouldBeFalse();
        (await browser.IsVisibleAsync("#error-bar")).ShouldBeFalse("a single node is not an error");
    }

    private static Task WaitForMaxLagAsync(DashboardBrowser browser, int lag) =>
        browser.WaitAsync($"the max lag of {Topic} is {lag}",
            "(s, n) => document.querySelector(s + ' [data-field=\"maxLag\"]').dataset.value === String(n)", Row(Topic), lag);

    private static string Str(long value) => value.ToString(CultureInfo.InvariantCulture);
}
