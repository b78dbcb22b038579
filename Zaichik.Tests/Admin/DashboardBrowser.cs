using System.Text.Json;
using PuppeteerSharp;

namespace Zaichik.Tests.Admin;

/// <summary>
/// One page of the dashboard in the machine's headless Chromium (never a downloaded browser), with waits that fail
/// with what the page showed instead, and screenshots saved under the repository's <c>TestResults/</c>.
/// </summary>
internal sealed class DashboardBrowser : IAsyncDisposable
{
    public const string DefaultChromium = "/usr/bin/chromium";

    /// <summary>How long a wait on the page may take; generous for a loaded 2-core machine.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private readonly IBrowser _browser;
    private readonly List<string> _pageErrors = [];

    private DashboardBrowser(IBrowser browser, IPage page)
    {
        _browser = browser;
        Page = page;
        page.PageError += (_, e) => { lock (_pageErrors) { _pageErrors.Add(e.Message); } };
        page.Console += (_, e) =>
        {
            if (e.Message.Type == ConsoleType.Error)
            {
                lock (_pageErrors)
                {
                    _pageErrors.Add("console: " + e.Message.Text);
                }
            }
        };
    }

    public IPage Page { get; }

    /// <summary>Script errors and console errors the page reported so far.</summary>
    public IReadOnlyList<string> PageErrors
    {
        get
        {
            lock (_pageErrors)
            {
                return [.. _pageErrors];
            }
        }
    }

    /// <summary>Chromium from <c>ZAICHIK_CHROMIUM</c>, else <c>/usr/bin/chromium</c>; fails saying how to install it.</summary>
    public static string FindChromium()
    {
        var configured = Environment.GetEnvironmentVariable("ZAICHIK_CHROMIUM");
        var path = string.IsNullOrWhiteSpace(configured) ? DefaultChromium : configured;
        if (!File.Exists(path))
        {
            throw new ShouldAssertException(
                $"The dashboard's browser tests need Chromium and there is none at {path}. " +
                "Install it with `apt-get install -y chromium` (.ci/run does), or set ZAICHIK_CHROMIUM to a Chromium executable.");
        }

        return path;
    }

    /// <summary>Starts Chromium and opens <paramref name="url"/>.</summary>
    public static async Task<DashboardBrowser> OpenAsync(string url)
    {
        var browser = await Puppeteer.LaunchAsync(new LaunchOptions
        {
            ExecutablePath = FindChromium(),
            Headless = true,
            // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
            Args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
            DefaultViewport = new ViewPortOptions { Width = 1280, Height = 900 },
        });
        try
        {
            var page = await browser.NewPageAsync();
            var dashboard = new DashboardBrowser(browser, page);
            await page.GoToAsync(url, new NavigationOptions { Timeout = (int)Deadline.TotalMilliseconds });
            return dashboard;
        }
        catch
        {
            await browser.CloseAsync();
            throw;
        }
    }

    /// <summary>Switches the dashboard's view, as a click on a link would.</summary>
    public Task GoToHashAsync(string hash) => Page.EvaluateFunctionAsync("h => { location.hash = h; }", hash);

    /// <summary>Waits until <paramref name="function"/> is true in the page; fails naming <paramref name="what"/> and the page's state.</summary>
    public async Task WaitAsync(string what, string function, params object[] args)
    {
        try
        {
            await Page.WaitForFunctionAsync(function, new WaitForFunctionOptions { Timeout = (int)Deadline.TotalMilliseconds, PollingInterval = 50 }, args);
        }
        catch (WaitTaskTimeoutException)
        {
            await ScreenshotAsync("dashboard-failure.png");
            throw new ShouldAssertException(
                $"The dashboard did not show within {Deadline.TotalSeconds} s that {what}.\nThe page: {await DescribeAsync()}");
        }
    }

    /// <summary>The <c>data-value</c> of the first element matching <paramref name="selector"/>; null when there is none.</summary>
    public Task<string?> ValueAsync(string selector) =>
        Page.EvaluateFunctionAsync<string?>("s => { const e = document.querySelector(s); return e ? (e.dataset.value ?? null) : null; }", selector);

    /// <summary>The shown text of the first element matching <paramref name="selector"/>; null when there is none.</summary>
    public Task<string?> TextAsync(string selector) =>
        Page.EvaluateFunctionAsync<string?>("s => { const e = document.querySelector(s); return e ? e.textContent : null; }", selector);

    public Task<int> CountAsync(string selector) =>
        Page.EvaluateFunctionAsync<int>("s => document.querySelectorAll(s).length", selector);

    public Task<bool> IsVisibleAsync(string selector) =>
        Page.EvaluateFunctionAsync<bool>("s => { const e = document.querySelector(s); return !!e && !e.closest('[hidden]'); }", selector);

    /// <summary>Saves a full-page screenshot as <c>TestResults/<paramref name="fileName"/></c> and returns its path.</summary>
    public async Task<string> ScreenshotAsync(string fileName)
    {
        var path = Path.Combine(ResultsFolder(), fileName);
        await Page.ScreenshotAsync(path, new ScreenshotOptions { FullPage = true });
        return path;
    }

    /// <summary><c>TestResults/</c> at the repository root (found by walking up to Zaichik.sln), else beside the test binaries.</summary>
    public static string ResultsFolder()
    {
        var folder = new DirectoryInfo(AppContext.BaseDirectory);
        while (folder is not null && !File.Exists(Path.Combine(folder.FullName, "Zaichik.sln")))
        {
            folder = folder.Parent;
        }

        var results = Path.Combine(folder?.FullName ?? AppContext.BaseDirectory, "TestResults");
        Directory.CreateDirectory(results);
        return results;
    }

    private async Task<string> DescribeAsync()
    {
        try
        {
            var state = await Page.EvaluateExpressionAsync<JsonElement>(
                """
                ({
                  url: location.href,
                  polls: document.body.dataset.polls ?? null,
                  errorBar: document.getElementById('error-bar')?.hidden === false ? document.getElementById('error-bar').textContent : null,
                  tokenForm: document.getElementById('token-form')?.hidden === false ? document.getElementById('token-reason').textContent : null,
                  view: (document.getElementById('view')?.innerText ?? '').slice(0, 1500),
                })
                """);
            var errors = PageErrors;
            return state.GetRawText() + (errors.Count > 0 ? "\nPage errors: " + string.Join("; ", errors) : "");
        }
        catch (PuppeteerException e)
        {
            return "(could not read the page: " + e.Message + ")";
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _browser.CloseAsync();
        await _browser.DisposeAsync();
    }
}
