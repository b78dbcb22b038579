using System.Diagnostics;

namespace Zaichik.Tests.Examples;

/// <summary>
/// The TypeScript client in <c>clients/typescript</c>, built once per test run when its <c>dist/</c> is missing or older
/// than its sources (<c>npm ci</c>, <c>npm run build</c>), so that <c>dotnet test</c> alone runs the browser tests.
/// </summary>
internal static class TypeScriptClient
{
    private static readonly SemaphoreSlim Building = new(1, 1);
    private static string? _built;

    /// <summary>The folder of the built client (<c>dist/</c>); builds it first when needed.</summary>
    public static async Task<string> BuildAsync()
    {
        await Building.WaitAsync();
        try
        {
            if (_built is not null)
            {
                return _built;
            }

            var folder = Folder();
            var dist = Path.Combine(folder, "dist");
            var newestSource = Directory.EnumerateFiles(Path.Combine(folder, "src"), "*.ts").Max(File.GetLastWriteTimeUtc);
            if (!File.Exists(Path.Combine(dist, "index.js")) || File.GetLastWriteTimeUtc(Path.Combine(dist, "index.js")) < newestSource)
            {
                if (!Directory.Exists(Path.Combine(folder, "node_modules")))
                {
                    await RunAsync(folder, "npm", "ci --no-audit --no-fund");
                }

                await RunAsync(folder, "npm", "run build");
            }

            return _built = dist;
        }
        finally
        {
            Building.Release();
        }
    }

    private static string Folder()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            var candidate = Path.Combine(folder.FullName, "clients", "typescript");
            if (File.Exists(Path.Combine(candidate, "package.json")))
            {
                return candidate;
            }
        }

        throw new ShouldAssertException("clients/typescript is not above the test's folder");
    }

    private static async Task RunAsync(string folder, string program, string arguments)
    {
        var start = new ProcessStartInfo(program, arguments) { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true };
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ShouldAssertException($"The browser tests build the TypeScript client with {program}, which cannot be started ({e.Message}): install Node.js 20+ and npm.");
        }

        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            await process.WaitForExitAsync(deadline.Token);
            if (process.ExitCode != 0)
            {
                throw new ShouldAssertException($"`{program} {arguments}` in {folder} failed with exit code {process.ExitCode}:\n{await output}\n{await errors}");
            }
        }
    }
}
