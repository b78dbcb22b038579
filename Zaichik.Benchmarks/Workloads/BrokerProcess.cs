using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Zaichik.Benchmarks.Workloads;

/// <summary>The broker as a child process, started from the Zaichik.Server.dll beside this benchmark.</summary>
internal sealed class BrokerProcess(Process process, int port)
{
    public int Port => port;

    /// <summary>How long the broker may take to listen.</summary>
    private static readonly TimeSpan StartDeadline = TimeSpan.FromMinutes(2);

    /// <param name="settings">Configuration for the broker as <c>Zaichik__Name=value</c> environment variables, e.g. <c>MaxConnections</c>.</param>
    public static async Task<(BrokerProcess Broker, TimeSpan Started)> StartAsync(string dataPath, CancellationToken cancellationToken, IReadOnlyDictionary<string, string>? settings = null)
    {
        var port = FreePort();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (name, value) in settings ?? new Dictionary<string, string>())
        {
            start.Environment[$"Zaichik__{name}"] = value;
        }

        foreach (var argument in new[] { Path.Combine(AppContext.BaseDirectory, "Zaichik.Server.dll"), "--port", port.ToString(CultureInfo.InvariantCulture), "--data", dataPath, "--log", "warning" })
        {
            start.ArgumentList.Add(argument);
        }

        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = Stopwatch.StartNew();
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException("the broker exited before it listened"));
        var probe = Task.Run(async () =>
        {
            // The listening line is logged at Information; with warnings only, the port tells when it listens.
            while (!listening.Task.IsCompleted)
            {
                try
                {
                    using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    await socket.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
                    listening.TrySetResult();
                }
                catch (SocketException)
                {
                    await Task.Delay(5, cancellationToken);
                }
            }
        }, cancellationToken);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await listening.Task.WaitAsync(StartDeadline, cancellationToken);
        var took = started.Elapsed;
        await probe;
        return (new BrokerProcess(process, port), took);
    }

    public double RssMiB() => StatusKiB("VmRSS:") / 1024.0;

    /// <summary>User and system CPU time the broker used so far, from /proc/&lt;pid&gt;/stat (10 ms resolution).</summary>
    public TimeSpan CpuTime()
    {
        var stat = File.ReadAllText($"/proc/{process.Id}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return TimeSpan.FromSeconds(ticks / 100.0);
    }

    public double PeakRssMiB() => StatusKiB("VmHWM:") / 1024.0;

    public int OpenFiles() => Directory.Exists($"/proc/{process.Id}/fd") ? Directory.GetFileSystemEntries($"/proc/{process.Id}/fd").Length : -1;

    /// <summary>SIGTERM, and the time until the process is gone.</summary>
    public async Task<TimeSpan> StopAsync()
    {
        var stopping = Stopwatch.StartNew();
        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        await process.WaitForExitAsync().WaitAsync(StartDeadline);
        process.Dispose();
        return stopping.Elapsed;
    }

    private long StatusKiB(string field)
    {
        var line = File.ReadLines($"/proc/{process.Id}/status").FirstOrDefault(text => text.StartsWith(field, StringComparison.Ordinal));
        return line is null ? -1 : long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
