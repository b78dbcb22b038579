using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Zaichik.Server.Hosting;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Admin;

/// <summary>A real broker with its admin listener on 127.0.0.1:0, and an HTTP client for it.</summary>
internal sealed class AdminTestServer : IAsyncDisposable
{
    private AdminTestServer(TestServer broker, HttpClient http)
    {
        Broker = broker;
        Http = http;
    }

    public TestServer Broker { get; }

    public HttpClient Http { get; }

    public static async Task<AdminTestServer> StartAsync(
        Func<ZaichikServerOptions, ZaichikServerOptions>? configure = null, TimeProvider? time = null, string? token = null, Microsoft.Extensions.Logging.ILoggerProvider? logs = null)
    {
        var broker = await TestServer.StartAsync(
            options => (configure?.Invoke(options) ?? options) with { Admin = new AdminOptions { Url = "http://127.0.0.1:0" } }, time, logs: logs);
        var http = new HttpClient { BaseAddress = new Uri(broker.Server.AdminUrl!), Timeout = TimeSpan.FromSeconds(30) };
        if (token is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return new AdminTestServer(broker, http);
    }

    /// <summary>GETs <paramref name="path"/>, expecting 200 and JSON.</summary>
    public async Task<JsonElement> GetJsonAsync(string path)
    {
        using var response = await Http.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();
        ((int)response.StatusCode).ShouldBe(200, body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>GETs <paramref name="path"/>, expecting a problem response with <paramref name="status"/> and <paramref name="code"/>.</summary>
    public async Task<JsonElement> GetProblemAsync(string path, int status, string code, HttpMethod? method = null, object? body = null)
    {
        using var request = new HttpRequestMessage(method ?? HttpMethod.Get, path);
        if (body is not null)
        {
            request.Content = body as HttpContent ?? JsonContent.Create(body);
        }

        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        ((int)response.StatusCode).ShouldBe(status, text);
        response.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");
        var problem = JsonDocument.Parse(text).RootElement.Clone();
        problem.GetProperty("status").GetInt32().ShouldBe(status);
        problem.GetProperty("code").GetString().ShouldBe(code);
        problem.GetProperty("title").GetString().ShouldNotBeNullOrWhiteSpace();
        problem.GetProperty("detail").GetString().ShouldNotBeNullOrWhiteSpace();
        return problem;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Broker.DisposeAsync();
    }
}
