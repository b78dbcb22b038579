using System.Globalization;

namespace Zaichik.Benchmarks;

/// <summary>What to run and against which server, parsed from the command line.</summary>
internal sealed record BenchmarkSettings
{
    public const string Usage = """
        Usage: dotnet run -c Release --project Zaichik.Benchmarks -- [options] [w1] [w2] [w2d] [w3] [w4] [w5] [topics] [wg] [fanout]

        Workloads (default: w1 to w5 and w2d):
          w1  publish throughput (1,000 in flight) and publish latency (1 in flight)
          w2  replay of retained messages by a new subscriber (batched commits, then auto-commit)
          w2d replay by a durable consumer (batched commits) on an Always topic and on an Interval one
          w3  fan-out latency: 4 subscribers, one producer at a fixed rate
          w4  dedup: publishes cycling over 1,000 keys in a 10 s compaction window
          w5  durability: publish throughput (1,000 in flight) with Always, Interval and Memory topics,
              and Always publish latency (1 in flight)
          topics  a broker process holding --topics topics with one message each: create and publish rates,
              RSS, descriptors, restart time (only when named)
          wg  consumer group: 4 members (prefetch 256) commit each message on its own while one producer
              publishes --messages (1,000 in flight); then the same with a group of 1 member (only when named)
          fanout  a broker process fans --fanout-messages out to --subscribers raw subscribers of one topic (no acks):
              deliveries/s, broker CPU per delivery, RSS per subscriber, latency (only when named)

        Options:
          --host H --port P   target an external server (default: an in-process server on a temp folder)
          --messages N        messages for w1, w2, w2d, w4, wg and each w5 topic (default 1,000,000)
          --topics N          topics for the topics workload (default 100,000)
          --rate R            w3 messages per second (default 20,000)
          --subscribers N     subscribers for fanout (default 10,000)
          --fanout-messages N messages for fanout (default 200)
          --seconds S         w3 duration in seconds (default 5)
          --timeout S         a workload running longer than this aborts as "timed out" (default 120)
          --quick             small smoke run: 50,000 messages, w3 for 1 s
          --tls               the in-process server serves TLS with a self-signed certificate made for the run
          --allocations       after each workload, print the types it allocated most (sampled by the runtime)
        """;

    /// <summary>An external server's host, or null to start one in-process.</summary>
    public string? Host { get; init; }

    public int Port { get; init; }

    public long Messages { get; init; } = 1_000_000;

    public int FanOutRate { get; init; } = 20_000;

    public TimeSpan FanOutDuration { get; init; } = TimeSpan.FromSeconds(5);

    public TimeSpan WorkloadTimeout { get; init; } = TimeSpan.FromSeconds(120);

    public bool Quick { get; init; }

    public bool SampleAllocations { get; init; }

    /// <summary>Serve and connect with TLS (in-process server only).</summary>
    public bool Tls { get; init; }

    public int Topics { get; init; } = 100_000;

    public int Subscribers { get; init; } = 10_000;

    public int FanOutMessages { get; init; } = 200;

    public IReadOnlyList<string> Workloads { get; init; } = ["w1", "w2", "w2d", "w3", "w4", "w5"];

    public bool InProcess => Host is null;

    /// <summary>Parses the arguments; throws <see cref="ArgumentException"/> with a readable message when they are wrong.</summary>
    public static BenchmarkSettings Parse(IReadOnlyList<string> args)
    {
        var settings = new BenchmarkSettings();
        var workloads = new List<string>();
        long? messages = null;
        TimeSpan? duration = null;
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i].ToLowerInvariant();
            switch (arg)
            {
                case "w1" or "w2" or "w2d" or "w3" or "w4" or "w5" or "topics" or "wg" or "fanout":
                    if (!workloads.Contains(arg))
                    {
                        workloads.Add(arg);
                    }

                    break;
                case "--quick":
                    settings = settings with { Quick = true };
                    break;
                case "--tls":
                    settings = settings with { Tls = true };
                    break;
                case "--allocations":
                    settings = settings with { SampleAllocations = true };
                    break;
                case "--host":
                    settings = settings with { Host = Value(args, ref i) };
                    break;
                case "--port":
                    settings = settings with { Port = (int)Number(args, ref i, 1, 65535) };
                    break;
                case "--messages":
                    messages = Number(args, ref i, 1_000, 100_000_000);
                    break;
                case "--topics":
                    settings = settings with { Topics = (int)Number(args, ref i, 100, 10_000_000) };
                    break;
                case "--subscribers":
                    settings = settings with { Subscribers = (int)Number(args, ref i, 1, 100_000) };
                    break;
                case "--fanout-messages":
                    settings = settings with { FanOutMessages = (int)Number(args, ref i, 1, 1_000_000) };
                    break;
                case "--rate":
                    settings = settings with { FanOutRate = (int)Number(args, ref i, 1, 1_000_000) };
                    break;
                case "--seconds":
                    duration = TimeSpan.FromSeconds(Number(args, ref i, 1, 600));
                    break;
                case "--timeout":
                    settings = settings with { WorkloadTimeout = TimeSpan.FromSeconds(Number(args, ref i, 5, 3_600)) };
                    break;
                default:
                    throw new ArgumentException($"unknown argument '{args[i]}'");
            }
        }

        if (settings.Host is not null && settings.Port == 0)
        {
            throw new ArgumentException("--host needs --port");
        }

        if (settings.Host is not null && settings.Tls)
        {
            throw new ArgumentException("--tls works with the in-process server only (it makes its own certificate)");
        }

        if (settings.Host is null && settings.Port != 0)
        {
            throw new ArgumentException("--port needs --host (without them an in-process server is started)");
        }

        return settings with
        {
            Messages = messages ?? (settings.Quick ? 50_000 : 1_000_000),
            FanOutDuration = duration ?? TimeSpan.FromSeconds(settings.Quick ? 1 : 5),
            Workloads = workloads.Count > 0 ? workloads : settings.Workloads,
        };
    }

    private static string Value(IReadOnlyList<string> args, ref int i)
    {
        if (i + 1 >= args.Count)
        {
            throw new ArgumentException($"{args[i]} needs a value");
        }

        return args[++i];
    }

    private static long Number(IReadOnlyList<string> args, ref int i, long min, long max)
    {
        var name = args[i];
        var text = Value(args, ref i).Replace("_", string.Empty, StringComparison.Ordinal).Replace(",", string.Empty, StringComparison.Ordinal);
        if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw new ArgumentException($"{name} must be a whole number between {min:N0} and {max:N0}, not '{args[i]}'");
        }

        return value;
    }
}
