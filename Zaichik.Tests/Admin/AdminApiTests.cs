using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;

namespace Zaichik.Tests.Admin;

/// <summary>Every admin endpoint against a real broker, with the real client making the traffic it reports.</summary>
public sealed class AdminApiTests
{
    private const string AdminSecret = "0123456789abcdef-admin";
    private const string AppSecret = "0123456789abcdef-app";

    [Fact]
    public async Task Server_reports_version_listeners_totals_and_options_without_secrets()
    {
        await using var admin = await AdminTestServer.StartAsync(configure: Tokens, token: AdminSecret);
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", admin.Broker.Port, new ZaichikClientOptions { Token = AppSecret });
        for (var i = 0; i < 5; i++)
        {
            await client.PublishAsync("orders", $"order {i}");
        }

        var server = await admin.GetJsonAsync("/api/server");

        server.GetProperty("version").GetString().ShouldBe(BrokerCommandLine.Version);
        var listeners = server.GetProperty("listeners").EnumerateArray().ToArray();
        listeners.Single(listener => listener.GetProperty("kind").GetString() == "tcp").GetProperty("address").GetString().ShouldBe($"127.0.0.1:{admin.Broker.Port}");
        listeners.Single(listener => listener.GetProperty("kind").GetString() == "admin").GetProperty("address").GetString().ShouldBe(admin.Broker.Server.AdminUrl);
        server.GetProperty("auth").GetBoolean().ShouldBeTrue();
        server.GetProperty("connections").GetInt32().ShouldBe(1);
        server.GetProperty("messagesIn").GetInt64().ShouldBe(5);
        server.GetProperty("topics").GetProperty("total").GetInt32().ShouldBe(1);
        server.GetProperty("dataPath").GetString().ShouldBe(Path.GetFullPath(admin.Broker.DataPath));
        var text = server.GetRawText();
        text.ShouldNotContain(AdminSecret);
        text.ShouldNotContain(AppSecret);
        var options = server.GetProperty("options");
        options.GetProperty("Tokens").EnumerateArray().Select(token => token.GetProperty("Name").GetString()).ShouldBe(["ops", "app"]);
        options.GetProperty("Tokens")[0].TryGetProperty("Token", out _).ShouldBeFalse("a token's secret is never shown");

        // Named and written as configuration takes them: Storage:PageSizeBits, an enum by name, a TimeSpan as c-format.
        options.GetProperty("Storage").GetProperty("PageSizeBits").GetInt32().ShouldBe(admin.Broker.Server.Options.Storage.PageSizeBits);
        options.GetProperty("Durability").GetString().ShouldBe(admin.Broker.Server.Options.Durability.ToString());
        options.GetProperty("IdleTimeout").GetString().ShouldBe(admin.Broker.Server.Options.IdleTimeout.ToString("c", System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Topics_lists_settings_sequences_counts_and_pages_by_name()
    {
        await using var admin = await AdminTestServer.StartAsync();
        await using var client = await admin.Broker.ConnectAsync();
        await client.CreateTopicAsync("audit.b", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1), CompactionWindow = TimeSpan.FromSeconds(10), Durability = Durability.Always });
        for (var i = 0; i < 10; i++)
        {
            await client.PublishAsync("audit.b", $"event {i}", key: $"k{i % 7}");
        }

        await client.PublishAsync("audit.a", "one");
        await client.PublishAsync("zeta", "two");

        var all = (await admin.GetJsonAsync("/api/topics")).EnumerateArray().ToArray();
        all.Select(topic => topic.GetProperty("name").GetString()).ShouldBe(["audit.a", "audit.b", "zeta"]);
        var audit = all[1];
        audit.GetProperty("state").GetString().ShouldBe("open");
        audit.GetProperty("retentionTtlMs").GetInt64().ShouldBe(3_600_000);
        audit.GetProperty("compactionWindowMs").GetInt64().ShouldBe(10_000);
        audit.GetProperty("durability").GetString().ShouldBe("Always");
        audit.GetProperty("firstSequence").GetInt64().ShouldBe(1);
        audit.GetProperty("lastSequence").GetInt64().ShouldBe(7, "3 of the 10 repeat a key inside the window");
        audit.GetProperty("messageCount").GetInt64().ShouldBe(7);
        audit.GetProperty("messagesIn").GetInt64().ShouldBe(7);
        audit.GetProperty("duplicatesDropped").GetInt64().ShouldBe(3);
        audit.GetProperty("bytesOnDisk").GetInt64().ShouldBeGreaterThan(0);

        var prefixed = (await admin.GetJsonAsync("/api/topics?prefix=audit.")).EnumerateArray().Select(topic => topic.GetProperty("name").GetString());
        prefixed.ShouldBe(["audit.a", "audit.b"]);
        var firstPage = (await admin.GetJsonAsync("/api/topics?limit=2")).EnumerateArray().Select(topic => topic.GetProperty("name").GetString()).ToArray();
        firstPage.ShouldBe(["audit.a", "audit.b"]);
        var nextPage = (await admin.GetJsonAsync($"/api/topics?limit=2&after={firstPage[^1]}")).EnumerateArray().Select(topic => topic.GetProperty("name").GetString());
        nextPage.ShouldBe(["zeta"]);
        (await admin.GetJsonAsync("/api/topics?prefix=audit.&after=audit.a")).EnumerateArray().Select(topic => topic.GetProperty("name").GetString()).ShouldBe(["audit.b"]);
        (await admin.GetJsonAsync("/api/topics?prefix=audit.b&after=audit.a")).EnumerateArray().Select(topic => topic.GetProperty("name").GetString()).ShouldBe(["audit.b"]);
        (await admin.GetJsonAsync("/api/topics?prefix=nothing")).GetArrayLength().ShouldBe(0);
        (await admin.GetJsonAsync("/api/topics?after=zeta")).GetArrayLength().ShouldBe(0);

        // A topic created after a listing shows in the next one, in its place.
        await client.PublishAsync("audit.ab", "late");
        (await admin.GetJsonAsync("/api/topics?prefix=audit.")).EnumerateArray().Select(topic => topic.GetProperty("name").GetString()).ShouldBe(["audit.a", "audit.ab", "audit.b"]);

        await admin.GetProblemAsync("/api/topics?limit=0", 400, "invalid-request");
        await admin.GetProblemAsync("/api/topics?limit=1001", 400, "invalid-request");
    }

    [Fact]
    public async Task A_topic_shows_its_durable_consumers_with_committed_sequence_lag_and_connection()
    {
        await using var admin = await AdminTestServer.StartAsync();
        await using var publisher = await admin.Broker.ConnectAsync();
        await publisher.CreateTopicAsync("billing", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        for (var i = 1; i <= 10; i++)
        {
            await publisher.PublishAsync("billing", $"invoice {i}");
        }

        var consumer = await admin.Broker.ConnectAsync();
        var subscription = await consumer.SubscribeAsync("billing", new SubscribeOptions { DurableName = "ledger", From = StartPosition.Sequence(1), Prefetch = 10 });
        var messages = await Client.ReconnectTests.ReadAsync(subscription, 4);
        await consumer.CommitAsync(messages[^1]);
        await consumer.ConfirmCommitsAsync();

        var detail = await admin.GetJsonAsync("/api/topics/billing");
        detail.GetProperty("consumerCount").GetInt32().ShouldBe(1);
        detail.GetProperty("maxLag").GetInt64().ShouldBe(6);
        detail.GetProperty("subscribers").GetInt32().ShouldBe(1);
        var ledger = detail.GetProperty("consumers").EnumerateArray().Single();
        ledger.GetProperty("name").GetString().ShouldBe("ledger");
        ledger.GetProperty("committedSequence").GetInt64().ShouldBe(4);
        ledger.GetProperty("lag").GetInt64().ShouldBe(6);
        ledger.GetProperty("connected").GetBoolean().ShouldBeTrue();
        detail.GetProperty("holeRanges").GetArrayLength().ShouldBe(0);

        var consumers = (await admin.GetJsonAsync("/api/consumers")).EnumerateArray().ToArray();
        consumers.Single().GetProperty("topic").GetString().ShouldBe("billing");
        (await admin.GetJsonAsync("/api/consumers?topic=billing")).EnumerateArray().Single().GetProperty("lag").GetInt64().ShouldBe(6);

        await consumer.DisposeAsync();
        await WaitUntilAsync(async () => !(await admin.GetJsonAsync("/api/topics/billing")).GetProperty("consumers")[0].GetProperty("connected").GetBoolean());

        await admin.GetProblemAsync("/api/topics/nope", 404, "topic-not-found");
        await admin.GetProblemAsync("/api/consumers?topic=nope", 404, "topic-not-found");
        await admin.GetProblemAsync("/api/nothing-here", 404, "not-found");
    }

    [Fact]
    public async Task A_closed_topic_is_listed_with_its_last_sequences_and_its_detail_opens_it()
    {
        await using var admin = await AdminTestServer.StartAsync();
        await using var client = await admin.Broker.ConnectAsync();
        await client.CreateTopicAsync("kept", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        await client.PublishAsync("kept", "a");
        await client.PublishAsync("kept", "b");
        admin.Broker.Registry.TryGet("kept", out var topic).ShouldBeTrue();
        (await topic.TryCloseAsync(TimeSpan.Zero, CancellationToken.None)).ShouldBeTrue();

        var listed = (await admin.GetJsonAsync("/api/topics")).EnumerateArray().Single();
        listed.GetProperty("state").GetString().ShouldBe("closed");
        listed.GetProperty("lastSequence").GetInt64().ShouldBe(2);
        listed.GetProperty("messageCount").GetInt64().ShouldBe(2);
        listed.GetProperty("openFiles").GetInt32().ShouldBe(0, "a closed topic holds no descriptor");

        var detail = await admin.GetJsonAsync("/api/topics/kept");
        detail.GetProperty("state").GetString().ShouldBe("open");
        detail.GetProperty("lastSequence").GetInt64().ShouldBe(2);
        detail.GetProperty("openFiles").GetInt32().ShouldBeGreaterThan(0);
        var server = await admin.GetJsonAsync("/api/server");
        server.GetProperty("openFiles").GetInt32().ShouldBeGreaterThanOrEqualTo(detail.GetProperty("openFiles").GetInt32());
        server.GetProperty("maxOpenFiles").GetInt32().ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task Peek_returns_stored_messages_with_keys_headers_and_payloads_as_text_or_base64()
    {
        await using var admin = await AdminTestServer.StartAsync();
        await using var client = await admin.Broker.ConnectAsync();
        await client.CreateTopicAsync("events", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        var headers = new ZaichikHeaders { { "source", "billing" } };
        await client.PublishAsync("events", "first", "k1", headers);
        await client.PublishAsync("events", new byte[] { 0xff, 0x00, 0xfe });
        for (var i = 3; i <= 30; i++)
        {
            await client.PublishAsync("events", $"message {i}");
        }

        var page = await admin.GetJsonAsync("/api/topics/events/messages?limit=2");
        page.GetProperty("firstSequence").GetInt64().ShouldBe(1);
        page.GetProperty("lastSequence").GetInt64().ShouldBe(30);
        page.GetProperty("next").GetInt64().ShouldBe(3);
        var messages = page.GetProperty("messages").EnumerateArray().ToArray();
        messages.Length.ShouldBe(2);
        messages[0].GetProperty("sequence").GetInt64().ShouldBe(1);
        messages[0].GetProperty("key").GetString().ShouldBe("k1");
        messages[0].GetProperty("payload").GetString().ShouldBe("first");
        messages[0].GetProperty("payloadEncoding").GetString().ShouldBe("text");
        var header = messages[0].GetProperty("headers").EnumerateArray().Single();
        header.GetProperty("key").GetString().ShouldBe("source");
        header.GetProperty("value").GetString().ShouldBe("billing");
        messages[1].GetProperty("key").ValueKind.ShouldBe(JsonValueKind.Null);
        messages[1].GetProperty("payloadEncoding").GetString().ShouldBe("base64");
        Convert.FromBase64String(messages[1].GetProperty("payload").GetString()!).ShouldBe(new byte[] { 0xff, 0x00, 0xfe });
        messages[1].GetProperty("size").GetInt32().ShouldBe(3);

        var defaultPage = await admin.GetJsonAsync("/api/topics/events/messages?from=25");
        defaultPage.GetProperty("messages").EnumerateArray().Select(message => message.GetProperty("sequence").GetInt64()).ShouldBe([25, 26, 27, 28, 29, 30]);
        defaultPage.GetProperty("next").ValueKind.ShouldBe(JsonValueKind.Null);

        var base64 = await admin.GetJsonAsync("/api/topics/events/messages?from=1&limit=1&encoding=base64");
        var encoded = base64.GetProperty("messages")[0];
        encoded.GetProperty("payloadEncoding").GetString().ShouldBe("base64");
        Encoding.UTF8.GetString(Convert.FromBase64String(encoded.GetProperty("payload").GetString()!)).ShouldBe("first");

        await admin.GetProblemAsync("/api/topics/events/messages?limit=101", 400, "invalid-request");
        await admin.GetProblemAsync("/api/topics/events/messages?from=zero", 400, "invalid-request");
        await admin.GetProblemAsync("/api/topics/events/messages?encoding=hex", 400, "invalid-request");
        await admin.GetProblemAsync("/api/topics/missing/messages", 404, "topic-not-found");

        // Peeking moved nothing: a new subscriber from the start still gets message 1 first.
        var subscription = await client.SubscribeAsync("events", new SubscribeOptions { From = StartPosition.Retained });
        (await Client.ReconnectTests.ReadAsync(subscription, 1))[0].Sequence.ShouldBe(1);
    }

    [Fact]
    public async Task Peek_never_shows_expired_messages()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var admin = await AdminTestServer.StartAsync(time: time);
        await using var client = await admin.Broker.ConnectAsync();
        await client.CreateTopicAsync("short", new TopicOptions { RetentionTtl = TimeSpan.FromMinutes(1) });
        await client.PublishAsync("short", "old");
        time.Advance(TimeSpan.FromMinutes(2));
        await client.PublishAsync("short", "new");

        var page = await admin.GetJsonAsync("/api/topics/short/messages");

        page.GetProperty("messages").EnumerateArray().Select(message => message.GetProperty("payload").GetString()).ShouldBe(["new"]);
    }

    [Fact]
    public async Task Post_creates_a_topic_confirms_an_identical_one_and_refuses_conflicts_and_bad_bodies()
    {
        await using var admin = await AdminTestServer.StartAsync();

        using (var created = await admin.Http.PostAsJsonAsync("/api/topics", new { name = "payments", retentionTtlMs = 60_000, compactionWindowMs = 5_000, durability = "always" }))
        {
            created.StatusCode.ShouldBe(HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
            var topic = await created.Content.ReadFromJsonAsync<JsonElement>();
            topic.GetProperty("name").GetString().ShouldBe("payments");
            topic.GetProperty("durability").GetString().ShouldBe("Always");
            topic.GetProperty("retentionTtlMs").GetInt64().ShouldBe(60_000);
        }

        using (var again = await admin.Http.PostAsJsonAsync("/api/topics", new { name = "payments", retentionTtlMs = 60_000, compactionWindowMs = 5_000, durability = "Always" }))
        {
            again.StatusCode.ShouldBe(HttpStatusCode.OK);
        }

        using (var limited = await admin.Http.PostAsJsonAsync("/api/topics", new { name = "limited", retentionTtlMs = 60_000, maxMessages = 100, maxBytes = 65_536 }))
        {
            limited.StatusCode.ShouldBe(HttpStatusCode.Created, await limited.Content.ReadAsStringAsync());
            var topic = await limited.Content.ReadFromJsonAsync<JsonElement>();
            topic.GetProperty("maxMessages").GetInt64().ShouldBe(100);
            topic.GetProperty("maxBytes").GetInt64().ShouldBe(65_536);
        }

        await admin.GetProblemAsync("/api/topics", 400, "invalid-request", HttpMethod.Post, new { name = "negative", maxMessages = -1 });
        await admin.GetProblemAsync("/api/topics", 409, "topic-exists", HttpMethod.Post, new { name = "payments", retentionTtlMs = 1 });
        await admin.GetProblemAsync("/api/topics", 400, "invalid-request", HttpMethod.Post, new { name = "bad name with spaces" });
        await admin.GetProblemAsync("/api/topics", 400, "invalid-request", HttpMethod.Post, new { name = "x", durability = "sometimes" });
        await admin.GetProblemAsync("/api/topics", 400, "invalid-request", HttpMethod.Post, new { retentionTtlMs = 5 });
        await admin.GetProblemAsync("/api/topics", 400, "invalid-request", HttpMethod.Post, new StringContent("{not json", Encoding.UTF8, "application/json"));

        // The topic the API created behaves as created: a repeated key inside the window is a duplicate.
        await using var client = await admin.Broker.ConnectAsync();
        (await client.PublishAsync("payments", "a", key: "p1")).Duplicate.ShouldBeFalse();
        (await client.PublishAsync("payments", "b", key: "p1")).Duplicate.ShouldBeTrue();
    }

    [Fact]
    public async Task Connections_show_remote_token_subscriptions_in_flight_and_traffic()
    {
        await using var admin = await AdminTestServer.StartAsync(configure: Tokens, token: AdminSecret);
        var options = new ZaichikClientOptions { Token = AppSecret };
        await using var publisher = await ZaichikClient.ConnectAsync("127.0.0.1", admin.Broker.Port, options);
        await using var consumer = await ZaichikClient.ConnectAsync("127.0.0.1", admin.Broker.Port, options);
        await publisher.CreateTopicAsync("feed", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        for (var i = 0; i < 3; i++)
        {
            await publisher.PublishAsync("feed", $"item {i}");
        }

        var subscription = await consumer.SubscribeAsync("feed", new SubscribeOptions { From = StartPosition.Sequence(1), Prefetch = 5, DurableName = "reader" });
        await Client.ReconnectTests.ReadAsync(subscription, 3);

        var connections = (await admin.GetJsonAsync("/api/connections")).EnumerateArray().ToArray();
        connections.Length.ShouldBe(2);
        connections.ShouldAllBe(connection => connection.GetProperty("token").GetString() == "app");
        connections.ShouldAllBe(connection => connection.GetProperty("remoteAddress").GetString()!.StartsWith("127.0.0.1:"));
        var publishing = connections.Single(connection => connection.GetProperty("subscriptions").GetArrayLength() == 0);
        publishing.GetProperty("messagesIn").GetInt64().ShouldBe(3);
        publishing.GetProperty("bytesIn").GetInt64().ShouldBeGreaterThan(0);
        var consuming = connections.Single(connection => connection.GetProperty("subscriptions").GetArrayLength() == 1);
        consuming.GetProperty("messagesOut").GetInt64().ShouldBe(3);
        consuming.GetProperty("bytesOut").GetInt64().ShouldBeGreaterThan(0);
        var feed = consuming.GetProperty("subscriptions")[0];
        feed.GetProperty("topic").GetString().ShouldBe("feed");
        feed.GetProperty("durableName").GetString().ShouldBe("reader");
        feed.GetProperty("prefetch").GetInt32().ShouldBe(5);
        feed.GetProperty("inFlight").GetInt32().ShouldBe(3, "delivered, not committed");
        feed.GetProperty("startSequence").GetInt64().ShouldBe(1);
    }

    [Fact]
    public async Task With_tokens_the_api_and_metrics_need_the_admin_right_and_health_does_not()
    {
        var logs = new Zaichik.Tests.EndToEnd.CapturingLoggerProvider();
        await using var admin = await AdminTestServer.StartAsync(configure: Tokens, logs: logs);

        var missing = await admin.GetProblemAsync("/api/topics", 401, "unauthorized");
        missing.GetProperty("detail").GetString()!.ShouldContain("Bearer");
        using (var response = await admin.Http.GetAsync("/api/server"))
        {
            response.Headers.WwwAuthenticate.ShouldNotBeEmpty();
        }

        await admin.GetProblemAsync("/metrics", 401, "unauthorized");
        admin.Http.DefaultRequestHeaders.Authorization = new("Bearer", "0123456789abcdef-unknown");
        await admin.GetProblemAsync("/api/topics", 401, "unauthorized");
        admin.Http.DefaultRequestHeaders.Authorization = new("Bearer", AppSecret);
        var forbidden = await admin.GetProblemAsync("/api/topics", 403, "forbidden");
        forbidden.GetProperty("detail").GetString()!.ShouldContain("'app'");
        await admin.GetProblemAsync("/api/topics", 403, "forbidden", HttpMethod.Post, new { name = "sneaky" });
        admin.Broker.Registry.TryGet("sneaky", out _).ShouldBeFalse();

        admin.Http.DefaultRequestHeaders.Authorization = new("Bearer", AdminSecret);
        (await admin.GetJsonAsync("/api/topics")).GetArrayLength().ShouldBe(0);
        using (var metrics = await admin.Http.GetAsync("/metrics"))
        {
            metrics.StatusCode.ShouldBe(HttpStatusCode.OK);
        }

        logs.Lines.ShouldContain(line => line.Contains("refused") && line.Contains("the token is not known"));
        logs.Lines.ShouldContain(line => line.Contains("refused") && line.Contains("token 'app' does not have the admin right"));
        logs.Lines.ShouldNotContain(line => line.Contains("0123456789abcdef"), "no secret is ever logged");

        admin.Http.DefaultRequestHeaders.Authorization = null;
        (await admin.Http.GetStringAsync("/healthz")).Trim().ShouldBe("ok");
        (await admin.Http.GetStringAsync("/readyz")).Trim().ShouldBe("ready");
    }

    [Fact]
    public async Task Health_and_readiness_answer_and_the_listener_can_be_turned_off()
    {
        await using (var admin = await AdminTestServer.StartAsync())
        {
            using var health = await admin.Http.GetAsync("/healthz");
            health.StatusCode.ShouldBe(HttpStatusCode.OK);
            using var ready = await admin.Http.GetAsync("/readyz");
            ready.StatusCode.ShouldBe(HttpStatusCode.OK);
        }

        await using var off = await Zaichik.Tests.EndToEnd.TestServer.StartAsync();
        off.Server.AdminUrl.ShouldBeNull();
    }

    [Fact]
    public void Invalid_admin_settings_are_refused_with_their_names()
    {
        string[] Problems(AdminOptions admin) => [.. new ZaichikServerOptions { Admin = admin }.Validate()];

        Problems(new AdminOptions { Url = "ftp://127.0.0.1:1" }).ShouldContain(problem => problem.Contains("Admin:Url"));
        Problems(new AdminOptions { Url = "http://example.com:8890" }).ShouldContain(problem => problem.Contains("IP address"));
        Problems(new AdminOptions { Url = "https://127.0.0.1:8890" }).ShouldContain(problem => problem.Contains("Tls"));
        Problems(new AdminOptions { MaxPeekMessages = 0 }).ShouldContain(problem => problem.Contains("Admin:MaxPeekMessages"));
        Problems(new AdminOptions { MaxTopicsPerPage = 0 }).ShouldContain(problem => problem.Contains("Admin:MaxTopicsPerPage"));
        Problems(new AdminOptions { Url = "off" }).ShouldBeEmpty();
        Problems(new AdminOptions()).ShouldBeEmpty();
    }

    private static ZaichikServerOptions Tokens(ZaichikServerOptions options) => options with
    {
        Tokens =
        [
            new ZaichikTokenOptions { Name = "ops", Token = AdminSecret, Publish = [">"], Subscribe = [">"], Admin = true },
            new ZaichikTokenOptions { Name = "app", Token = AppSecret, Publish = [">"], Subscribe = [">"] },
        ],
    };

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!await condition())
        {
            await Task.Delay(20, deadline.Token);
        }
    }
}

/// <summary>What the broker says at start-up about who can reach its admin API.</summary>
public sealed class AdminExposureTests
{
    [Theory]
    [InlineData("http://0.0.0.0:0", false, true)]
    [InlineData("http://0.0.0.0:0", true, false)]
    [InlineData("http://127.0.0.1:0", false, false)]
    [InlineData("http://localhost:0", false, false)]
    public async Task An_admin_api_beyond_this_machine_without_tokens_is_warned_about(string url, bool tokens, bool warned)
    {
        var logs = new Zaichik.Tests.EndToEnd.CapturingLoggerProvider();
        var data = Path.Combine(Path.GetTempPath(), "zaichik-admin-exposure-" + Guid.NewGuid().ToString("N"));
        var options = new ZaichikServerOptions
        {
            Port = 0,
            DataPath = data,
            Admin = new AdminOptions { Url = url },
            Tokens = tokens ? [new ZaichikTokenOptions { Name = "ops", Token = "0123456789abcdef-ops", Admin = true }] : [],
        };

        // Built, never started: nothing listens, and the warning is decided from the settings alone.
        var app = ZaichikServer.Build(options, TimeProvider.System, logging => logging.AddProvider(logs));
        var folderLock = app.Services.GetRequiredService<Zaichik.Server.Storage.DataFolderLock>();
        await app.DisposeAsync();
        folderLock.Dispose();
        Directory.Delete(data, recursive: true);

        logs.Lines.Any(line => line.Contains("beyond this machine", StringComparison.Ordinal)).ShouldBe(warned, string.Join('\n', logs.Lines));
    }
}
