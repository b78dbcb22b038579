using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;
using Zaichik.Tests.Client;

namespace Zaichik.Tests.EndToEnd;

/// <summary>The WebSocket transport: the same protocol and session as TCP, reached through <c>Listeners:WebSocket:Url</c>.</summary>
public sealed class WebSocketTests
{
    private static Task<TestServer> StartAsync(string url = "http://127.0.0.1:0/ws", IReadOnlyList<string>? origins = null, IReadOnlyList<ZaichikTokenOptions>? tokens = null) =>
        TestServer.StartAsync(options => options with
        {
            Listeners = new ListenerOptions { WebSocket = new WebSocketListenerOptions { Url = url, AllowedOrigins = origins ?? [] } },
            Tokens = tokens ?? [],
        });

    private static Uri WebSocketUrl(TestServer server) =>
        new(server.State.Server().Listeners.Single(listener => listener.Kind == "websocket").Address);

    private static Task<ZaichikClient> ConnectAsync(TestServer server, string? token = null) =>
        ZaichikClient.ConnectAsync(new ZaichikClientOptions { WebSocketUrl = WebSocketUrl(server), Token = token }).AsTask();

    [Fact]
    public async Task A_client_over_WebSocket_publishes_subscribes_and_commits_beside_a_TCP_client()
    {
        await using var server = await StartAsync();
        WebSocketUrl(server).AbsolutePath.ShouldBe("/ws");
        await using var tcp = await server.ConnectAsync();
        await tcp.CreateTopicAsync("feed", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        (await tcp.PublishAsync("feed", "from tcp")).Sequence.ShouldBe(1);

        await using var web = await ConnectAsync(server);
        var subscription = await web.SubscribeAsync("feed", new SubscribeOptions { Prefetch = 1 });
        var first = (await ReconnectTests.ReadAsync(subscription, 1))[0];
        first.PayloadText.ShouldBe("from tcp");
        await web.CommitAsync(first);

        (await web.PublishAsync("feed", "from the web")).Sequence.ShouldBe(2);
        (await ReconnectTests.ReadAsync(subscription, 1))[0].PayloadText.ShouldBe("from the web", "the commit moved the window, over WebSocket");

        // Many frames in flight: replies and deliveries come in as many WebSocket messages as they were flushed in.
        var publishes = Enumerable.Range(0, 500).Select(i => web.PublishAsync("feed", $"burst {i}").AsTask()).ToArray();
        (await Task.WhenAll(publishes)).Select(ack => ack.Sequence).Order().ShouldBe(Enumerable.Range(3, 500).Select(i => (long)i));
        server.State.Connections().Count.ShouldBe(2);
        server.State.Connections().ShouldContain(connection => connection.Id.StartsWith("ws-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Tokens_apply_over_WebSocket_as_over_TCP()
    {
        ZaichikTokenOptions[] tokens =
        [
            new() { Name = "writer", Token = "writer-secret-0123456789", Publish = [">"] },
            new() { Name = "reader", Token = "reader-secret-0123456789", Subscribe = ["public.>"] },
        ];
        await using var server = await StartAsync(tokens: tokens);

        var noToken = await Should.ThrowAsync<ZaichikServerException>(async () => await ConnectAsync(server));
        noToken.Code.ShouldBe(ErrorCode.AuthenticationFailed);

        await using var reader = await ConnectAsync(server, "reader-secret-0123456789");
        var refused = await Should.ThrowAsync<ZaichikServerException>(async () => await reader.SubscribeAsync("private.notes"));
        refused.Code.ShouldBe(ErrorCode.NotAuthorized);
        await reader.SubscribeAsync("public.news");
    }

    [Fact]
    public async Task Pages_from_other_origins_are_refused_unless_allowed_and_the_listener_serves_nothing_else()
    {
        await using var server = await StartAsync(origins: ["http://app.example:8080"]);
        var url = WebSocketUrl(server);

        await OpenAsync(url, origin: null);
        await OpenAsync(url, origin: $"http://{url.Authority}");
        await OpenAsync(url, origin: "http://app.example:8080");
        var refused = await Should.ThrowAsync<WebSocketException>(() => OpenAsync(url, origin: "http://evil.example"));
        refused.Message.ShouldContain("403");

        using var http = new HttpClient { BaseAddress = new Uri($"http://{url.Authority}") };
        var plain = await http.GetAsync("/ws");
        plain.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await plain.Content.ReadAsStringAsync()).ShouldContain("websocket-required");
        (await http.GetAsync("/api/server")).StatusCode.ShouldBe(HttpStatusCode.NotFound, "the admin API is not served on the WebSocket listener");
    }

    [Fact]
    public async Task A_WebSocket_client_reconnects_after_a_broker_restart_and_its_subscription_resumes_without_a_gap()
    {
        var port = Processes.BrokerProcess.FreePort();
        await using var server = await StartAsync($"http://127.0.0.1:{port}/ws");
        await using var client = await ZaichikClient.ConnectAsync(new ZaichikClientOptions
        {
            WebSocketUrl = WebSocketUrl(server),
            Reconnect = new() { MinDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(100) },
        });
        await ReconnectTests.ResumesAcrossRestartAsync(server, client);
    }

    [Fact]
    public async Task An_idle_WebSocket_connection_gets_its_IdleTimeout_Error_then_a_normal_close()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(options => options with
        {
            IdleTimeout = TimeSpan.FromSeconds(30),
            Listeners = new ListenerOptions { WebSocket = new WebSocketListenerOptions { Url = "http://127.0.0.1:0/ws" } },
        }, time);
        using var socket = await HelloAsync(server);

        time.Advance(TimeSpan.FromSeconds(31));

        var (error, close) = await LastWordsAsync(socket);
        error.ShouldBe(ErrorCode.IdleTimeout);
        close.ShouldBe(WebSocketCloseStatus.NormalClosure);
    }

    [Fact]
    public async Task A_stopping_broker_tells_WebSocket_clients_ServerShuttingDown_then_closes_normally()
    {
        var server = await StartAsync();
        try
        {
            using var socket = await HelloAsync(server);
            var stopping = server.StopAsync();
            var (error, close) = await LastWordsAsync(socket);
            await stopping;
            error.ShouldBe(ErrorCode.ServerShuttingDown);
            close.ShouldBe(WebSocketCloseStatus.NormalClosure);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    /// <summary>A raw WebSocket that has exchanged Hello.</summary>
    private static async Task<ClientWebSocket> HelloAsync(TestServer server)
    {
        var socket = new ClientWebSocket();
        await socket.ConnectAsync(WebSocketUrl(server), CancellationToken.None);
        var hello = new System.Buffers.ArrayBufferWriter<byte>();
        FrameWriter.Write(hello, new HelloFrame(ProtocolVersion.Current));
        await socket.SendAsync(hello.WrittenMemory, WebSocketMessageType.Binary, true, CancellationToken.None);
        var received = new List<byte>();
        var buffer = new byte[4096];
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (received.Count < 4 || received.Count < 4 + System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(received.ToArray()))
        {
            var part = await socket.ReceiveAsync(buffer, deadline.Token);
            received.AddRange(buffer.AsSpan(0, part.Count).ToArray());
        }

        return socket;
    }

    /// <summary>Everything up to the server's close: the code of the Error frame that came first, and the close status.</summary>
    private static async Task<(ErrorCode Error, WebSocketCloseStatus? Close)> LastWordsAsync(ClientWebSocket socket)
    {
        var received = new List<byte>();
        var buffer = new byte[4096];
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        WebSocketReceiveResult result;
        do
        {
            result = await socket.ReceiveAsync(buffer, deadline.Token);
            received.AddRange(buffer.AsSpan(0, result.Count).ToArray());
        }
        while (result.MessageType != WebSocketMessageType.Close);

        var frames = new FrameReader();
        var sequence = new System.Buffers.ReadOnlySequence<byte>(received.ToArray());
        frames.TryRead(ref sequence, out var frame).ShouldBeTrue("an Error frame came before the close");
        frame.Type.ShouldBe(FrameType.Error);
        return (frames.ReadError(frame).Code, result.CloseStatus);
    }

    [Fact]
    public void A_WebSocket_url_that_is_not_http_or_ws_is_refused_at_start_up()
    {
        new WebSocketListenerOptions { Url = "ftp://127.0.0.1:1/ws" }.Validate(false).ShouldNotBeEmpty();
        new WebSocketListenerOptions { Url = "https://127.0.0.1:1/ws" }.Validate(false).ShouldContain(problem => problem.Contains("Tls"));
        new WebSocketListenerOptions { Url = "http://127.0.0.1:1/ws", AllowedOrigins = ["app.example"] }.Validate(false).ShouldNotBeEmpty();
        new WebSocketListenerOptions { Url = "off" }.Validate(false).ShouldBeEmpty();
        Should.Throw<ArgumentException>(() => new ZaichikClientOptions { WebSocketUrl = new Uri("http://127.0.0.1/ws") }.Validate());
    }

    private static async Task OpenAsync(Uri url, string? origin)
    {
        using var socket = new ClientWebSocket();
        if (origin is not null)
        {
            socket.Options.SetRequestHeader("Origin", origin);
        }

        await socket.ConnectAsync(url, CancellationToken.None);
        socket.State.ShouldBe(WebSocketState.Open);
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
    }
}
