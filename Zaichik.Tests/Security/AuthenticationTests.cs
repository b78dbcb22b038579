using System.Collections;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Security;

/// <summary>Tokens in Hello, and topic patterns per token, against a real server.</summary>
public sealed class AuthenticationTests
{
    private const string WriterSecret = "writer-secret-0123456789";
    private const string ReaderSecret = "reader-secret-9876543210";

    private static readonly ZaichikTokenOptions[] Tokens =
    [
        new() { Name = "order-writer", Token = WriterSecret, Publish = ["orders.*"] },
        new() { Name = "order-reader", Token = ReaderSecret, Subscribe = ["orders.>"] },
    ];

    private static Task<TestServer> StartAsync(CapturingLoggerProvider? logs = null) =>
        TestServer.StartAsync(options => options with { Tokens = Tokens }, logs: logs);

    private static ValueTask<ZaichikClient> ConnectAsync(TestServer server, string? token) =>
        ZaichikClient.ConnectAsync("127.0.0.1", server.Port, ZaichikClientOptions.Default with { Token = token });

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("writer-secret-0123456788")]
    [InlineData("writer-secret-0123456789-and-more")]
    public async Task A_missing_or_unknown_token_gets_AuthenticationFailed_and_the_connection_is_closed(string? token)
    {
        await using var server = await StartAsync();

        var refused = await Should.ThrowAsync<ZaichikServerException>(async () => await ConnectAsync(server, token));

        refused.Code.ShouldBe(ErrorCode.AuthenticationFailed);
        await TestServer.EventuallyAsync(() => server.State.Server().Connections == 0, "the refused connection should be closed");
    }

    [Fact]
    public async Task A_token_may_publish_only_where_its_patterns_allow_and_a_refusal_keeps_the_connection_open()
    {
        await using var server = await StartAsync();
        await using var writer = await ConnectAsync(server, WriterSecret);

        (await writer.PublishAsync("orders.eu", "allowed")).Sequence.ShouldBeGreaterThanOrEqualTo(0);
        var outside = await Should.ThrowAsync<ZaichikServerException>(async () => await writer.PublishAsync("payments.eu", "not allowed"));
        var deeper = await Should.ThrowAsync<ZaichikServerException>(async () => await writer.PublishAsync("orders.eu.paid", "not allowed"));
        var create = await Should.ThrowAsync<ZaichikServerException>(async () => await writer.CreateTopicAsync("payments"));
        var subscribe = await Should.ThrowAsync<ZaichikServerException>(async () => await writer.SubscribeAsync("orders.eu"));

        outside.Code.ShouldBe(ErrorCode.NotAuthorized);
        outside.Message.ShouldContain("order-writer");
        deeper.Code.ShouldBe(ErrorCode.NotAuthorized);
        create.Code.ShouldBe(ErrorCode.NotAuthorized);
        subscribe.Code.ShouldBe(ErrorCode.NotAuthorized);
        writer.IsConnected.ShouldBeTrue();
        (await writer.PublishAsync("orders.us", "still allowed after refusals")).Sequence.ShouldBeGreaterThanOrEqualTo(0);
        server.Registry.TryGet("payments.eu", out _).ShouldBeFalse("a refused publish must not auto-create its topic");
    }

    [Fact]
    public async Task A_token_may_subscribe_only_where_its_patterns_allow_and_receives_what_was_published()
    {
        await using var server = await StartAsync();
        await using var writer = await ConnectAsync(server, WriterSecret);
        await using var reader = await ConnectAsync(server, ReaderSecret);
        await writer.CreateTopicAsync("orders.eu", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        await writer.PublishAsync("orders.eu", "first");

        await using var messages = new MessageReader(await reader.SubscribeAsync("orders.eu", new SubscribeOptions { AutoCommit = true }));
        var refused = await Should.ThrowAsync<ZaichikServerException>(async () => await reader.SubscribeAsync("payments"));
        var publish = await Should.ThrowAsync<ZaichikServerException>(async () => await reader.PublishAsync("orders.eu", "readers do not write"));

        (await messages.NextAsync()).PayloadText.ShouldBe("first");
        refused.Code.ShouldBe(ErrorCode.NotAuthorized);
        publish.Code.ShouldBe(ErrorCode.NotAuthorized);
        await writer.PublishAsync("orders.eu", "second");
        (await messages.NextAsync()).PayloadText.ShouldBe("second");
    }

    [Fact]
    public async Task Secrets_never_appear_in_the_log_or_in_options_text()
    {
        var logs = new CapturingLoggerProvider();
        await using (var server = await StartAsync(logs))
        {
            await using (var writer = await ConnectAsync(server, WriterSecret))
            {
                await Should.ThrowAsync<ZaichikServerException>(async () => await writer.PublishAsync("payments", "x"));
            }

            await Should.ThrowAsync<ZaichikServerException>(async () => await ConnectAsync(server, "wrong-secret-but-long-enough"));
            await TestServer.EventuallyAsync(() => logs.Lines.Any(line => line.Contains("failed authentication")), "the failure should be logged");
            server.Options.ToString().ShouldNotContain(WriterSecret);
            (ZaichikClientOptions.Default with { Token = WriterSecret }).ToString().ShouldNotContain(WriterSecret);
        }

        logs.Lines.ShouldNotBeEmpty();
        logs.Lines.ShouldAllBe(line => !line.Contains(WriterSecret) && !line.Contains(ReaderSecret) && !line.Contains("wrong-secret-but-long-enough"));
    }

    [Fact]
    public async Task Without_configured_tokens_every_client_is_served_with_or_without_a_token()
    {
        await using var server = await TestServer.StartAsync();
        await using var anonymous = await ConnectAsync(server, null);
        await using var withToken = await ConnectAsync(server, "any-token-is-ignored-here");

        (await anonymous.PublishAsync("open.topic", "a")).Sequence.ShouldBeGreaterThanOrEqualTo(0);
        (await withToken.PublishAsync("open.topic", "b")).Sequence.ShouldBeGreaterThan(0);
    }

    [Fact]
    public void Invalid_token_options_are_reported_at_start()
    {
        var options = ZaichikServerOptions.Default with
        {
            Tokens =
            [
                new() { Name = "short", Token = "too-short" },
                new() { Name = "", Token = "a-long-enough-secret-1" },
                new() { Name = "twice", Token = "a-long-enough-secret-2" },
                new() { Name = "twice", Token = "a-long-enough-secret-3" },
                new() { Name = "same-secret", Token = "a-long-enough-secret-3" },
                new() { Name = "bad-pattern", Token = "a-long-enough-secret-4", Publish = ["orders..eu"], Subscribe = ["a.>.b"] },
            ],
        };

        var problems = options.Validate();

        problems.ShouldContain(problem => problem.Contains("'short'") && problem.Contains("16 characters"));
        problems.ShouldContain(problem => problem.Contains("Tokens:1 has no Name"));
        problems.ShouldContain(problem => problem.Contains("'twice' is configured twice"));
        problems.ShouldContain(problem => problem.Contains("'same-secret' has the same secret"));
        problems.ShouldContain(problem => problem.Contains("orders..eu"));
        problems.ShouldContain(problem => problem.Contains("a.>.b"));
        problems.ShouldAllBe(problem => !problem.Contains("a-long-enough-secret"));
    }

    [Fact]
    public void Tokens_bind_from_environment_variables()
    {
        var environment = new Hashtable
        {
            ["Zaichik__Tokens__0__Name"] = "billing",
            ["Zaichik__Tokens__0__Token"] = "billing-secret-0123456789",
            ["Zaichik__Tokens__0__Publish__0"] = "billing.*",
            ["Zaichik__Tokens__0__Subscribe__0"] = "orders.>",
            ["Zaichik__Tokens__0__Subscribe__1"] = "audit",
        };

        var options = ZaichikConfiguration.BindOptions(ZaichikConfiguration.Build([], environment));

        var token = options.Tokens.ShouldHaveSingleItem();
        token.Name.ShouldBe("billing");
        token.Token.ShouldBe("billing-secret-0123456789");
        token.Publish.ShouldBe(["billing.*"]);
        token.Subscribe.ShouldBe(["orders.>", "audit"]);
        options.Validate().ShouldBeEmpty();
    }
}
