using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;

namespace Zaichik.Cli.Infrastructure;

/// <summary>Reads the broker's admin HTTP API (docs/admin-api.md). Problems become <see cref="CliException"/>s.</summary>
internal sealed class AdminApi : IDisposable
{
    private readonly HttpClient _http;
    private readonly Uri _baseUrl;

    public AdminApi(CliSettings settings)
    {
        _baseUrl = settings.Admin;
        _http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        if (settings.Token is { } token)
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
    }

    /// <summary>GETs <paramref name="pathAndQuery"/>; returns the body as text and as parsed JSON.</summary>
    public Task<(string Raw, JsonElement Json)> GetAsync(string pathAndQuery, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Get, pathAndQuery, cancellationToken);

    /// <summary>POSTs to <paramref name="pathAndQuery"/> without a body; returns the answer as text and as parsed JSON.</summary>
    public Task<(string Raw, JsonElement Json)> PostAsync(string pathAndQuery, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, pathAndQuery, cancellationToken);

    private async Task<(string Raw, JsonElement Json)> SendAsync(HttpMethod method, string pathAndQuery, CancellationToken cancellationToken)
    {
        var url = new Uri(_baseUrl, pathAndQuery);
        HttpResponseMessage response;
        try
        {
            using var request = new HttpRequestMessage(method, url);
            response = await _http.SendAsync(request, cancellationToken);
        }
        catch (HttpRequestException e) when (e.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError
                                              || e.InnerException is SocketException)
        {
            throw CliException.Unreachable($"cannot reach the admin API at {_baseUrl.Authority}: {e.InnerException?.Message ?? e.Message}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw CliException.Unreachable($"the admin API at {_baseUrl.Authority} did not answer within {_http.Timeout.TotalSeconds:0} s");
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                throw CliException.Failed(ProblemText(response.StatusCode, body));
            }

            try
            {
                using var document = JsonDocument.Parse(body);
                return (body, document.RootElement.Clone());
            }
            catch (JsonException)
            {
                throw CliException.Failed($"the admin API at {_baseUrl.Authority} answered {url.AbsolutePath} with something that is not JSON");
            }
        }
    }

    public void Dispose() => _http.Dispose();

    /// <summary>An RFC 7807 problem's detail (or title), else the status.</summary>
    private static string ProblemText(HttpStatusCode status, string body)
    {
        try
        {
            using var problem = JsonDocument.Parse(body);
            var root = problem.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                foreach (var field in new[] { "detail", "title" })
                {
                    if (root.TryGetProperty(field, out var text) && text.ValueKind == JsonValueKind.String && text.GetString() is { Length: > 0 } message)
                    {
                        return message;
                    }
                }
            }
        }
        catch (JsonException)
        {
        }

        return $"the admin API answered {(int)status} {status}";
    }
}
