using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Sockets;
using Xunit.Abstractions;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Fuzz;

/// <summary>
/// Hostile connections against a live broker: mutated frames after a valid Hello, garbage without one, valid streams
/// cut short. Every connection must get what the protocol promises for the bytes it sent (see
/// <see cref="StreamPrediction"/>) and then be closed, never left hanging; afterwards the broker must have logged no
/// error, hold no connection or subscription, and still serve a well-behaved client.
/// </summary>
public sealed class ServerFuzzTests(ITestOutputHelper output)
{
    private const int Connections = 500;
    private const int Concurrency = 16;

    /// <summary>How long one connection may go without the server answering or closing before it counts as hung.</summary>
    private static readonly TimeSpan HangBound = TimeSpan.FromSeconds(10);

    private static readonly byte[] Hello = FuzzCorpus.HelloBytes;
    private static readonly byte[] Close = FuzzCorpus.CloseBytes;

    private enum Kind
    {
        /// <summary>Hello, then valid and mutated frames, then Close.</summary>
        MutatedAfterHello,

        /// <summary>Random bytes or a mutated Hello, with no valid Hello first.</summary>
        GarbageWithoutHello,

        /// <summary>Hello and valid frames cut at a random byte, then the client's side is shut.</summary>
        ValidCutThenShutdown,

        /// <summary>Hello and valid frames cut at a random byte, then the socket is reset.</summary>
        ValidCutThenReset,

        /// <summary>Hello, valid frames and Close: every request must be answered.</summary>
        ValidWithClose,
    }

    [Fact]
    public async Task Hostile_connections_are_answered_or_closed_and_the_broker_keeps_serving()
    {
        var seed = FuzzSeed.Next();
        output.WriteLine($"Fuzzing the broker with {FuzzSeed.Replay(seed)}");
        var logs = new CapturingLoggerProvider();
        var tally = new ConcurrentDictionary<string, int>();
        var failures = new ConcurrentQueue<string>();

        await using (var server = await TestServer.StartAsync(logs: logs))
        {
            await CreateSeedTopicsAsync(server);
            using var slots = new SemaphoreSlim(Concurrency);
            var connections = Enumerable.Range(0, Connections).Select(async index =>
            {
                await slots.WaitAsync();
                try
                {
                    var random = new Random(HashCode.Combine(seed, index));
                    var problem = await FuzzOneConnectionAsync(server, random, tally);
                    if (problem is not null)
                    {
                        failures.Enqueue($"connection {index}: {problem}");
                    }
                }
                finally
                {
                    slots.Release();
                }
            });
            await Task.WhenAll(connections);

            output.WriteLine(string.Join(", ", tally.OrderBy(entry => entry.Key).Select(entry => $"{entry.Key}: {entry.Value}")));
            failures.ShouldBeEmpty($"with {FuzzSeed.Replay(seed)}:\n{string.Join("\n", failures.Take(10))}");

            await TestServer.EventuallyAsync(() => server.State.Server().Connections == 0, "every fuzzed connection is closed on the server");
            await TestServer.EventuallyAsync(() => server.Registry.Topics.Sum(topic => topic.Current?.SubscriberCount ?? 0) == 0, "no subscription outlives its connection");
            await TestServer.EventuallyAsync(() => server.Registry.Topics.Sum(topic => topic.Current?.RunningPumps ?? 0) == 0, "no delivery pump outlives its subscription");
            output.WriteLine($"{server.Registry.Count} topics after fuzzing");

            await AWellBehavedClientIsServedAsync(server);
        }

        var lines = logs.Lines.ToList();
        output.WriteLine(string.Join(", ", lines.GroupBy(line => line[..line.IndexOf(':')]).Select(group => $"{group.Count()} {group.Key}")));
        var bad = lines.Where(line => line.StartsWith("Error:", StringComparison.Ordinal) || line.StartsWith("Critical:", StringComparison.Ordinal) || line.StartsWith("Warning:", StringComparison.Ordinal)).ToList();
        bad.ShouldBeEmpty($"the broker logged problems while fuzzed with {FuzzSeed.Replay(seed)}:\n{string.Join("\n", bad.Take(10))}");
    }

    private static async Task CreateSeedTopicsAsync(TestServer server)
    {
        // The same settings as the CreateTopic seeds, so an unmutated one is acknowledged. This client is closed
        // before the fuzzing, so that afterwards the broker should hold no connection at all.
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port);
        await client.CreateTopicAsync("fuzz-a", new TopicOptions());
        await client.CreateTopicAsync("fuzz-b", new TopicOptions
        {
            RetentionTtl = TimeSpan.FromMinutes(1),
            CompactionWindow = TimeSpan.FromSeconds(5),
            Durability = Durability.Interval,
            CommitInterval = TimeSpan.FromMilliseconds(50),
        });
        await client.CreateTopicAsync("fuzz-always", new TopicOptions { Durability = Durability.Always });
        await client.CreateTopicAsync("fuzz-memory", new TopicOptions { RetentionTtl = TimeSpan.FromSeconds(1), Durability = Durability.Memory });
    }

    private static async Task AWellBehavedClientIsServedAsync(TestServer server)
    {
        var client = await server.ConnectAsync();
        await client.CreateTopicAsync("after-fuzz", new TopicOptions { RetentionTtl = TimeSpan.FromMinutes(1) });
        await using var reader = new MessageReader(await client.SubscribeAsync("after-fuzz"));
        var ack = await client.PublishAsync("after-fuzz", "still serving");
        var message = await reader.NextAsync();
        message.Sequence.ShouldBe(ack.Sequence);
        message.PayloadText.ShouldBe("still serving");
    }

    /// <summary>Runs one hostile connection; returns what went wrong, or null.</summary>
    private static async Task<string?> FuzzOneConnectionAsync(TestServer server, Random random, ConcurrentDictionary<string, int> tally)
    {
        var roll = random.Next(100);
        var kind = roll switch
        {
            < 45 => Kind.MutatedAfterHello,
            < 60 => Kind.GarbageWithoutHello,
            < 75 => Kind.ValidCutThenShutdown,
            < 88 => Kind.ValidCutThenReset,
            _ => Kind.ValidWithClose,
        };
        var (stream, description) = Build(kind, random);
        var prediction = StreamPrediction.Of(stream, server.Options.MaxFrameSize);
        Count(tally, kind.ToString());
        Count(tally, $"ends {prediction.End}");

        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync("127.0.0.1", server.Port);
        var context = $"{kind} ({description}), predicted {prediction.End} {prediction.FatalCode}, sent {FuzzSeed.Hex(stream)}";
        try
        {
            // One send, so the server has normally read everything before it decides to close.
            await socket.SendAsync(stream, SocketFlags.None);
        }
        catch (SocketException)
        {
            // The server may close on a fatal frame or a Close before the rest arrives.
            if (!prediction.MayReset)
            {
                return $"sending failed although the server has no reason to close; {context}";
            }
        }

        if (kind == Kind.ValidCutThenReset)
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
            return null;
        }

        if (!prediction.ServerCloses)
        {
            // The server is right to wait for more; ending our side is what lets it finish.
            socket.Shutdown(SocketShutdown.Send);
        }

        var (received, reset, hung) = await ReceiveUntilClosedAsync(socket);
        if (hung)
        {
            return $"the server neither answered nor closed within {HangBound.TotalSeconds:0} s; received {FuzzSeed.Hex(received)}; {context}";
        }

        if (reset)
        {
            Count(tally, "reset by server");
        }

        var problem = Check(prediction, received, reset, tally);
        return problem is null ? null : $"{problem}; received {FuzzSeed.Hex(received)}; {context}";
    }

    private static (byte[] Stream, string Description) Build(Kind kind, Random random)
    {
        var parts = new List<byte[]>();
        var notes = new List<string>();
        switch (kind)
        {
            case Kind.MutatedAfterHello:
                parts.Add(Hello);
                for (var i = random.Next(1, 9); i > 0; i--)
                {
                    var seed = random.Next(20) == 0 ? FuzzCorpus.SmallSeeds[random.Next(FuzzCorpus.SmallSeeds.Count)] : FuzzCorpus.ClientSeeds[random.Next(FuzzCorpus.ClientSeeds.Count)];
                    var roll = random.Next(100);
                    if (roll < 30)
                    {
                        parts.Add(seed.Bytes);
                        notes.Add($"'{seed.Name}'");
                    }
                    else if (roll < 65)
                    {
                        parts.Add(FuzzCorpus.MutateField(seed, random, out var field));
                        notes.Add(field);
                    }
                    else
                    {
                        parts.Add(FuzzCorpus.Mutate(seed.Bytes, random, out var mutation));
                        notes.Add($"'{seed.Name}' with {mutation}");
                    }
                }

                parts.Add(Close);
                break;

            case Kind.GarbageWithoutHello:
                if (random.Next(2) == 0)
                {
                    parts.Add(FuzzCorpus.RandomBytes(random));
                    notes.Add("random bytes");
                }
                else
                {
                    parts.Add(FuzzCorpus.Mutate(Hello, random, out var mutation));
                    notes.Add($"Hello with {mutation}");
                }

                parts.Add(Close);
                break;

            default:
                parts.Add(Hello);
                for (var i = random.Next(1, 7); i > 0; i--)
                {
                    var seed = FuzzCorpus.ClientSeeds[random.Next(FuzzCorpus.ClientSeeds.Count)];
                    if (seed.Type is FrameType.Close or FrameType.Hello)
                    {
                        continue;
                    }

                    parts.Add(seed.Bytes);
                    notes.Add($"'{seed.Name}'");
                }

                if (kind == Kind.ValidWithClose)
                {
                    parts.Add(Close);
                    break;
                }

                var whole = parts.SelectMany(part => part).ToArray();
                var cut = random.Next(Hello.Length, whole.Length + 1);
                return (whole[..cut], $"{string.Join(", ", notes)}, cut at {cut} of {whole.Length}");
        }

        return (parts.SelectMany(part => part).ToArray(), string.Join(", ", notes));
    }

    /// <summary>Reads until the server closes; reports a reset (the server closed with our bytes unread) and a hang.</summary>
    private static async Task<(byte[] Received, bool Reset, bool Hung)> ReceiveUntilClosedAsync(Socket socket)
    {
        var received = new ArrayBufferWriter<byte>();
        using var deadline = new CancellationTokenSource(HangBound);
        try
        {
            while (true)
            {
                var read = await socket.ReceiveAsync(received.GetMemory(16 * 1024), SocketFlags.None, deadline.Token);
                if (read == 0)
                {
                    return (received.WrittenSpan.ToArray(), false, false);
                }

                received.Advance(read);
            }
        }
        catch (SocketException error) when (error.SocketErrorCode == SocketError.ConnectionReset)
        {
            return (received.WrittenSpan.ToArray(), true, false);
        }
        catch (OperationCanceledException)
        {
            return (received.WrittenSpan.ToArray(), false, true);
        }
    }

    /// <summary>Checks what the server sent against what the protocol promises for the bytes it was given.</summary>
    private static string? Check(StreamPrediction prediction, byte[] received, bool reset, ConcurrentDictionary<string, int> tally)
    {
        var reader = new FrameReader();
        var buffer = new ReadOnlySequence<byte>(received);
        var frames = new List<(FrameType Type, ulong? RequestId, ErrorCode? Code)>();
        try
        {
            while (reader.TryRead(ref buffer, out var frame))
            {
                switch (frame.Type)
                {
                    case FrameType.Hello:
                        reader.ReadHello(frame);
                        frames.Add((frame.Type, null, null));
                        break;
                    case FrameType.Ack:
                        frames.Add((frame.Type, reader.ReadAck(frame).RequestId, null));
                        break;
                    case FrameType.Error:
                        var error = reader.ReadError(frame);
                        frames.Add((frame.Type, error.RequestId, error.Code));
                        break;
                    case FrameType.Message:
                        reader.ReadMessage(frame);
                        frames.Add((frame.Type, null, null));
                        break;
                    case FrameType.Pong:
                        reader.ReadPong(frame);
                        frames.Add((frame.Type, null, null));
                        break;
                    default:
                        return $"the server sent a {frame.Type} frame";
                }
            }
        }
        catch (ProtocolViolationException violation)
        {
            return $"the server sent bytes that are not a frame: {violation.Message}";
        }

        if (!buffer.IsEmpty && !reset)
        {
            return $"the server closed after {buffer.Length} bytes of an unfinished frame";
        }

        foreach (var frame in frames)
        {
            Count(tally, frame.Code is { } code ? $"Error {code}" : frame.Type.ToString());
        }

        if (frames.Any(frame => frame.Code is { } code && !Enum.IsDefined(code)))
        {
            return "an Error carries an undefined code";
        }

        if (prediction.HandshakeDone && frames.Count > 0 && frames[0].Type != FrameType.Hello)
        {
            return $"the first frame is {frames[0].Type}, not the server's Hello";
        }

        if (frames.Skip(1).Any(frame => frame.Type == FrameType.Hello) || (!prediction.HandshakeDone && frames.Any(frame => frame.Type == FrameType.Hello)))
        {
            return "the server sent a Hello it did not owe";
        }

        // Replies: each request at most once; all of them when the client closed properly.
        var owed = prediction.Requests.GroupBy(id => id).ToDictionary(group => group.Key, group => group.Count());
        var replies = frames.Where(frame => frame.Type == FrameType.Ack || (frame.Type == FrameType.Error && frame.RequestId is not null))
            .GroupBy(frame => frame.RequestId!.Value).ToDictionary(group => group.Key, group => group.Count());
        foreach (var (id, count) in replies)
        {
            if (count > owed.GetValueOrDefault(id))
            {
                return $"{count} replies to request id {id}, which was sent {owed.GetValueOrDefault(id)} times";
            }
        }

        if (prediction.End == StreamEnd.Closed && !reset && prediction.Requests.Count != replies.Values.Sum())
        {
            return $"{prediction.Requests.Count} requests before Close but {replies.Values.Sum()} replies";
        }

        // Errors without a request id: NotSubscribed or InvalidArgument (a Commit naming a topic, or a Nack),
        // ProtocolViolation (an extra Hello), and the one that closes the connection.
        var connectionErrors = frames.Where(frame => frame.Type == FrameType.Error && frame.RequestId is null).Select(frame => frame.Code!.Value).ToList();
        var fatal = prediction.FatalCode;
        var unexpected = connectionErrors
            .Where(code => code != ErrorCode.NotSubscribed && code != ErrorCode.InvalidArgument && code != ErrorCode.ProtocolViolation && code != fatal)
            .ToList();
        if (unexpected.Count > 0)
        {
            return $"connection-level Error {unexpected[0]} that the bytes sent do not call for";
        }

        var refusedAcknowledgements = connectionErrors.Count(code => code is ErrorCode.NotSubscribed or ErrorCode.InvalidArgument);
        if (refusedAcknowledgements > prediction.TopicAcknowledgements)
        {
            return $"{refusedAcknowledgements} NotSubscribed or InvalidArgument Errors without a request id for {prediction.TopicAcknowledgements} Commits naming a topic and Nacks";
        }

        var violations = connectionErrors.Count(code => code == ErrorCode.ProtocolViolation);
        var allowedViolations = prediction.ExtraHellos + (fatal == ErrorCode.ProtocolViolation ? 1 : 0);
        if (violations > allowedViolations)
        {
            return $"{violations} ProtocolViolation Errors for {prediction.ExtraHellos} extra Hellos";
        }

        if (fatal is { } closing)
        {
            if (connectionErrors.Count == 0 || connectionErrors[^1] != closing)
            {
                // A reset can swallow the last frames: the server closed with bytes of ours still unread.
                return reset ? null : $"expected a closing Error {closing}, the last connection-level Error is {(connectionErrors.Count == 0 ? "none" : connectionErrors[^1])}";
            }

            if (!reset && (frames[^1].Type != FrameType.Error || frames[^1].Code != closing || frames[^1].RequestId is not null))
            {
                return $"the closing Error {closing} was followed by a {frames[^1].Type} frame; it must be the last frame";
            }
        }
        else if (reset && !prediction.MayReset)
        {
            return "the connection was reset although the server read everything sent";
        }

        return null;
    }

    private static void Count(ConcurrentDictionary<string, int> tally, string what) => tally.AddOrUpdate(what, 1, (_, count) => count + 1);
}
