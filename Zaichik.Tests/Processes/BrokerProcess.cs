using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Zaichik.Tests.Processes;

/// <summary>
/// The broker as a child process (<c>dotnet Zaichik.Server.dll</c>) on a free loopback port, with everything it
/// writes kept so that a failed recovery can show what the restarted server said. With <c>ZAICHIK_BROKER</c> set to a
/// native-compiled broker (<c>scripts/publish-native.sh</c>), that executable runs instead: CI runs the process, crash
/// and cluster tests a second time against it.
/// </summary>
internal sealed class BrokerProcess : IAsyncDisposable
{
    /// <summary>How long a start may take before the "listening on" line, and a kill before the process is gone.</summary>
    public static readonly TimeSpan StartDeadline = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan ExitDeadline = TimeSpan.FromSeconds(10);

    /// <summary>The environment variable naming a native-compiled broker to run instead of <c>dotnet Zaichik.Server.dll</c>.</summary>
    private const string NativeBrokerVariable = "ZAICHIK_BROKER";

    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();
    private bool _disposed;

    private BrokerProcess(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    /// <summary>The broker's process id.</summary>
    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>CPU time the broker has used so far (user and system).</summary>
    public TimeSpan CpuTime
    {
        get
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }
    }

    /// <summary>Everything the process wrote so far, stdout and stderr interleaved as they arrived.</summary>
    public string Output => string.Join(Environment.NewLine, _output);

    /// <summary>Starts a broker on <paramref name="dataPath"/> and returns once it accepts connections.</summary>
    /// <exception cref="ShouldAssertException">It exited or did not report listening within <see cref="StartDeadline"/>.</exception>
    /// <param name="openFileLimit">When set, the broker runs under <c>ulimit -n</c> of this many descriptors.</param>
    /// <param name="arguments">More command-line arguments (<c>--Zaichik:Name value</c>).</param>
    public static async Task<BrokerProcess> StartAsync(string dataPath, int? port = null, int? openFileLimit = null, params string[] arguments)
    {
        var boundPort = port ?? FreePort();
        var startInfo = StartInfo(["--port", boundPort.ToString(), "--data", dataPath, .. arguments]);
        if (openFileLimit is { } limit)
        {
            // exec: the shell becomes the broker, so the process id and the signals are the broker's.
            var command = string.Join(' ', new[] { startInfo.FileName }.Concat(startInfo.ArgumentList).Select(Quote));
            var wrapped = new ProcessStartInfo("bash")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = startInfo.WorkingDirectory,
            };
            wrapped.ArgumentList.Add("-c");
            wrapped.ArgumentList.Add($"ulimit -n {limit} && exec {command}");
            startInfo = wrapped;
        }

        var process = new Process { StartInfo = startInfo, EnableRaisingEvents = true };
        var broker = new BrokerProcess(process, boundPort);
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, line) =>
        {
            if (line.Data is null)
            {
                return;
            }

            broker._output.Enqueue(line.Data);
            if (line.Data.Contains("listening on", StringComparison.Ordinal))
            {
                listening.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, line) =>
        {
            if (line.Data is not null)
            {
                broker._output.Enqueue("stderr: " + line.Data);
            }
        };
        process.Exited += (_, _) => listening.TrySetException(new ShouldAssertException("the server exited before it was listening"));

        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await listening.Task.WaitAsync(StartDeadline);
        }
        catch (Exception failure) when (failure is TimeoutException or ShouldAssertException)
        {
            await broker.DisposeAsync();
            var exitCode = process.HasExited ? process.ExitCode.ToString() : "none (killed)";
            throw new ShouldAssertException(
                $"the server on {dataPath} did not start ({failure.Message}); exit code {exitCode}; it wrote:{Environment.NewLine}{broker.Output}");
        }

        return broker;
    }

    /// <summary>Runs the server with <paramref name="arguments"/> until it exits by itself; returns its exit code and output (stdout, then stderr).</summary>
    public static async Task<(int ExitCode, string Output)> RunToExitAsync(params string[] arguments)
    {
        using var process = Process.Start(StartInfo(arguments)) ?? throw new InvalidOperationException("could not start the server");
        var error = process.StandardError.ReadToEndAsync();
        var output = await process.StandardOutput.ReadToEndAsync().WaitAsync(StartDeadline);
        await process.WaitForExitAsync().WaitAsync(ExitDeadline);
        return (process.ExitCode, output + await error);
    }

    /// <summary>SIGTERM, then the time it took to exit and its exit code.</summary>
    public async Task<(int ExitCode, TimeSpan Took)> StopTimedAsync()
    {
        var started = Stopwatch.StartNew();
        var exitCode = await StopAsync();
        return (exitCode, started.Elapsed);
    }

    private static string Quote(string argument) => "'" + argument.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>SIGTERM, the way a service manager stops the broker; returns its exit code.</summary>
    public async Task<int> StopAsync()
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString()]))
        {
            await kill.WaitForExitAsync();
        }

        await _process.WaitForExitAsync().WaitAsync(StartDeadline);
        return _process.ExitCode;
    }

    /// <summary>SIGKILL to the whole process tree: no shutdown, no final commit, like a power-cut of the process.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync().WaitAsync(ExitDeadline);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            await KillAsync();
        }
        catch (Exception exception) when (exception is InvalidOperationException or TimeoutException)
        {
            // Never started, or already reaped: nothing left to stop.
        }

        _process.Dispose();
    }

    private static ProcessStartInfo StartInfo(params string[] arguments)
    {
        var native = Environment.GetEnvironmentVariable(NativeBrokerVariable);
        var start = new ProcessStartInfo(string.IsNullOrEmpty(native) ? "dotnet" : Path.GetFullPath(native))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };

        // Many brokers run at once in the tests: the admin listener is off unless a test's --admin turns it on.
        start.Environment["ZAICHIK_ADMIN"] = "off";
        if (string.IsNullOrEmpty(native))
        {
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Zaichik.Server.dll"));
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return start;
    }

    /// <summary>
    /// A port on 127.0.0.1 that is free now, for a listener that binds it later (a broker process, a Raft peer). It comes
    /// from below the kernel's ephemeral range, which outgoing connections take their ports from: a port picked there could
    /// be taken by any connection before its listener binds it. Within this process no port is handed out twice.
    /// </summary>
    public static int FreePort()
    {
        lock (s_portLock)
        {
            for (var attempt = 0; attempt < PortRange.Count; attempt++)
            {
                var port = s_nextPort;
                s_nextPort = port + 1 >= PortRange.End ? PortRange.Start : port + 1;
                if (CanBind(port))
                {
                    return port;
                }
            }
        }

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static readonly Lock s_portLock = new();
    private static readonly (int Start, int End, int Count) PortRange = FixedPortRange();
    private static int s_nextPort = PortRange.Start + Random.Shared.Next(PortRange.Count);

    /// <summary>The 10,000 ports below the first ephemeral one (from /proc/sys/net/ipv4/ip_local_port_range, 32768 when unknown).</summary>
    private static (int Start, int End, int Count) FixedPortRange()
    {
        var firstEphemeral = 32768;
        try
        {
            var range = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
            if (range.Length > 0 && int.TryParse(range[0], out var first) && first > 11024)
            {
                firstEphemeral = first;
            }
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
        }

        return (firstEphemeral - 10000, firstEphemeral, 10000);
    }

    private static bool CanBind(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
