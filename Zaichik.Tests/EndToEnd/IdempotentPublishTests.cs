using System.Text;
using Microsoft.Extensions.Time.Testing;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Tests.Processes;

namespace Zaichik.Tests.EndToEnd;

/// <summary>
/// A connection whose Hello carries a producer id publishes idempotently: the same producer id and producer sequence is
/// stored once per topic while the topic remembers it, and a repeat gets the original's Ack.
/// </summary>
public sealed class IdempotentPublishTests : IDisposable
{
    private const ulong Producer = 0xC0FFEE;

    private readonly string _dataPath = Path.Combine(Path.GetTempPath(), "zaichik-idempotent-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task A_publish_sent_again_on_a_new_connection_gets_the_original_Ack_and_is_stored_once()
    {
        await using var server = await TestServer.StartAsync();
        var original = new List<AckFrame>();
        await using (var first = await RawConnection.ConnectAsync(server.Port, producerId: Producer))
        {
            await HeaderTests.CreateRetainedTopicAsync(first, "orders");
            for (var n = 1UL; n <= 3; n++)
            {
                original.Add(await PublishAsync(first, "orders", n));
            }
        }

        await using var second = await RawConnection.ConnectAsync(server.Port, producerId: Producer);
        var repeat2 = await PublishAsync(second, "orders", 2);
        var repeat3 = await PublishAsync(second, "orders", 3);
        var next = await PublishAsync(second, "orders", 4);

        repeat2.Sequence.ShouldBe(original[1].Sequence, "the repeat is answered with the original's sequence");
        repeat2.Duplicate.ShouldBeFalse("a repeat is not a compaction duplicate");
        repeat3.Sequence.ShouldBe(original[2].Sequence);
        next.Sequence.ShouldBe(original[2].Sequence + 1, "a new producer sequence is stored after the others");
        (await StoredPayloadsAsync(server.Port, "orders", expected: 4)).ShouldBe(["p1", "p2", "p3", "p4"]);
    }

    [Fact]
    public async Task The_same_publish_arriving_on_two_connections_at_once_is_stored_once()
    {
        const int Publishes = 300;
        await using var server = await TestServer.StartAsync();
        await using var a = await RawConnection.ConnectAsync(server.Port, producerId: Producer);
        await using var b = await RawConnection.ConnectAsync(server.Port, producerId: Producer);
        await HeaderTests.CreateRetainedTopicAsync(a, "race");

        // Both connections send every publish without waiting: the original is often still in flight on one when
        // its repeat arrives on the other.
        var sendA = a.SendAsync(writer => WritePublishes(writer, Publishes));
        var sendB = b.SendAsync(writer => WritePublishes(writer, Publishes));
        await Task.WhenAll(sendA, sendB);
        var acksA = await ReceiveAcksAsync(a, Publishes);
        var acksB = await ReceiveAcksAsync(b, Publishes);

        for (var n = 1UL; n <= Publishes; n++)
        {
            acksA[n].ShouldBe(acksB[n], $"producer sequence {n} has one sequence, whichever connection stored it");
        }

        acksA.Values.Distinct().Count().ShouldBe(Publishes);
        (await StoredPayloadsAsync(server.Port, "race", expected: Publishes)).Count.ShouldBe(Publishes);
    }

    [Fact]
    public async Task A_repeat_after_a_broker_restart_is_stored_once()
    {
        await using var server = await TestServer.StartAsync();
        AckFrame third;
        await using (var first = await RawConnection.ConnectAsync(server.Port, producerId: Producer))
        {
            await HeaderTests.CreateRetainedTopicAsync(first, "restarted");
            await PublishAsync(first, "restarted", 1);
            await PublishAsync(first, "restarted", 2);
            third = await PublishAsync(first, "restarted", 3);
        }

        await server.RestartAsync();
        await using var again = await RawConnection.ConnectAsync(server.Port, producerId: Producer);
        var repeat = await PublishAsync(again, "restarted", 3);

        repeat.Sequence.ShouldBe(third.Sequence, "the topic rebuilt what it remembers from its log");
        (await StoredPayloadsAsync(server.Port, "restarted", expected: 3)).ShouldBe(["p1", "p2", "p3"]);
    }

    [Fact]
    public async Task On_a_topic_without_retention_a_repeat_after_a_restart_is_stored_once_while_the_original_is_in_the_log()
    {
        await using var server = await TestServer.StartAsync();
        // A durable consumer that committed sequence 1 and left: the topic keeps every later message for it.
        var consumer = await server.ConnectAsync();
        await using (var slow = await consumer.SubscribeAsync("auto-created", new SubscribeOptions { DurableName = "slow" }))
        {
            await consumer.PublishAsync("auto-created", "first");
            await using var reading = slow.GetAsyncEnumerator();
            (await reading.MoveNextAsync()).ShouldBeTrue();
            await consumer.CommitAsync(reading.Current);
            await consumer.ConfirmCommitsAsync();
        }

        AckFrame second;
        await using (var first = await RawConnection.ConnectAsync(server.Port, producerId: Producer))
        {
            (await PublishAsync(first, "auto-created", 1)).Sequence.ShouldBe(2);
            second = await PublishAsync(first, "auto-created", 2);
        }

        server.Registry.TryGet("auto-created", out var topic).ShouldBeTrue();
        await server.Maintenance.SweepAllAsync(CancellationToken.None);
        (await topic.TryCloseAsync(TimeSpan.Zero, CancellationToken.None)).ShouldBeTrue();
        await server.RestartAsync();
        await using var again = await RawConnection.ConnectAsync(server.Port, producerId: Producer);
        var repeat = await PublishAsync(again, "auto-created", 2);
        var next = await PublishAsync(again, "auto-created", 3);

        repeat.Sequence.ShouldBe(second.Sequence, "the repeat gets the original's Ack");
        next.Sequence.ShouldBe(second.Sequence + 1, "the repeat used up no sequence: it was not stored");
    }

    [Fact]
    public async Task On_a_topic_without_retention_the_producer_memory_does_not_hold_back_the_sweep()
    {
        await using var server = await TestServer.StartAsync();
        await using (var first = await RawConnection.ConnectAsync(server.Port, producerId: Producer))
        {
            await PublishAsync(first, "swept", 1);
            await PublishAsync(first, "swept", 2);
            server.Registry.TryGet("swept", out var topic).ShouldBeTrue();
            await server.Maintenance.SweepAllAsync(CancellationToken.None);
            topic.Current!.Log.FirstSequence.ShouldBe(3, "nobody reads the topic: its records go, producers or not");

            // While the topic stays open, its producer window still answers a repeat.
            (await PublishAsync(first, "swept", 2)).Sequence.ShouldBe(2);
        }
    }

    [Fact]
    public async Task A_repeat_after_the_broker_process_is_killed_is_stored_once()
    {
        var acks = new List<AckFrame>();
        await using (var broker = await BrokerProcess.StartAsync(_dataPath))
        {
            await using var first = await RawConnection.ConnectAsync(broker.Port, producerId: Producer);
            await HeaderTests.CreateRetainedTopicAsync(first, "killed", Durability.Always);
            for (var n = 1UL; n <= 5; n++)
            {
                acks.Add(await PublishAsync(first, "killed", n));
            }

            acks.ShouldAllBe(ack => ack.Durable, "on an Always topic every Ack means the message is on disk");
            await broker.KillAsync();
        }

        await using var restarted = await BrokerProcess.StartAsync(_dataPath);
        await using var again = await RawConnection.ConnectAsync(restarted.Port, producerId: Producer);
        for (var n = 1UL; n <= 5; n++)
        {
            (await PublishAsync(again, "killed", n)).Sequence.ShouldBe(acks[(int)n - 1].Sequence, $"producer sequence {n}, resent after kill -9");
        }

        var sixth = await PublishAsync(again, "killed", 6);

        sixth.Sequence!.Value.ShouldBeGreaterThan(acks[^1].Sequence!.Value, "a new publish is stored (after the sequences a crash leaves reserved)");
        (await StoredPayloadsAsync(restarted.Port, "killed", expected: 6)).ShouldBe(["p1", "p2", "p3", "p4", "p5", "p6"], restarted.Output);
    }

    [Fact]
    public async Task A_repeat_past_the_idempotence_window_is_stored_again()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(options => options with { IdempotenceWindow = TimeSpan.FromMinutes(2) }, time);
        await using var raw = await RawConnection.ConnectAsync(server.Port, producerId: Producer);
        await HeaderTests.CreateRetainedTopicAsync(raw, "windowed");
        var original = await PublishAsync(raw, "windowed", 1);

        time.Advance(TimeSpan.FromMinutes(2) - TimeSpan.FromMilliseconds(1));
        var withinWindow = await PublishAsync(raw, "windowed", 1);
        time.Advance(TimeSpan.FromMilliseconds(1));
        var pastWindow = await PublishAsync(raw, "windowed", 1);

        withinWindow.Sequence.ShouldBe(original.Sequence, "1 ms before the window ends the topic still remembers it");
        pastWindow.Sequence.ShouldBe(original.Sequence + 1, "once the window has passed, the repeat is a new message (documented)");
        (await StoredPayloadsAsync(server.Port, "windowed", expected: 2)).ShouldBe(["p1", "p1"]);
    }

    [Fact]
    public async Task A_repeat_on_an_Always_topic_is_answered_durable_even_while_the_original_waits_for_its_commit()
    {
        await using var server = await TestServer.StartAsync();
        await using var a = await RawConnection.ConnectAsync(server.Port, producerId: Producer);
        await using var b = await RawConnection.ConnectAsync(server.Port, producerId: Producer);
        await HeaderTests.CreateRetainedTopicAsync(a, "always", Durability.Always);

        // Sent back to back: the repeat is read while the original's group commit may still be running.
        await a.SendAsync(writer => FrameWriter.Write(writer, Publish("always", 1)));
        await b.SendAsync(writer => FrameWriter.Write(writer, Publish("always", 1)));
        var original = (await a.ReceiveAsync()).Ack!.Value;
        var repeat = (await b.ReceiveAsync()).Ack!.Value;

        original.Durable.ShouldBeTrue();
        repeat.Durable.ShouldBeTrue("a repeat on an Always topic is answered only once the original is on disk");
        repeat.Sequence.ShouldBe(original.Sequence);
        repeat.Duplicate.ShouldBeFalse();
    }

    [Fact]
    public async Task A_producer_sequence_without_a_producer_id_gets_InvalidArgument_and_the_connection_stays_open()
    {
        await using var server = await TestServer.StartAsync();
        await using var raw = await RawConnection.ConnectAsync(server.Port);

        var refused = await raw.PublishAsync(Publish("plain", 1));
        var ordinary = await raw.PublishAsync(Publish("plain", 0));

        refused.Error!.Value.Code.ShouldBe(ErrorCode.InvalidArgument);
        ordinary.Ack!.Value.Sequence.ShouldBe(1, "the connection stays open and the refused publish was not stored");
    }

    [Fact]
    public async Task Producer_sequence_0_on_an_idempotent_connection_is_an_ordinary_publish()
    {
        await using var server = await TestServer.StartAsync();
        await using var raw = await RawConnection.ConnectAsync(server.Port, producerId: Producer);

        var first = await PublishAsync(raw, "ordinary", 0);
        var second = await PublishAsync(raw, "ordinary", 0);

        second.Sequence.ShouldBe(first.Sequence + 1, "sequence 0 is never remembered, so both are stored");
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dataPath, recursive: true);
        }
        catch (IOException)
        {
            // Never created (the test did not start a broker process), or already gone.
        }
    }

    private static PublishFrame Publish(string topic, ulong producerSequence) =>
        new(1_000_000 + producerSequence, topic, null, Encoding.UTF8.GetBytes($"p{producerSequence}"), ProducerSequence: producerSequence);

    private static async Task<AckFrame> PublishAsync(RawConnection connection, string topic, ulong producerSequence)
    {
        var (ack, error) = await connection.PublishAsync(Publish(topic, producerSequence));
        ack.ShouldNotBeNull($"producer sequence {producerSequence} was refused: {error}");
        return ack.Value;
    }

    private static void WritePublishes(System.Buffers.IBufferWriter<byte> writer, int count)
    {
        for (var n = 1UL; n <= (ulong)count; n++)
        {
            FrameWriter.Write(writer, Publish("race", n));
        }
    }

    /// <summary>The Acks of <paramref name="count"/> publishes, by producer sequence (their request ids carry it).</summary>
    private static async Task<Dictionary<ulong, long>> ReceiveAcksAsync(RawConnection connection, int count)
    {
        var acks = new Dictionary<ulong, long>();
        while (acks.Count < count)
        {
            var (_, error, ack) = await connection.ReceiveAsync();
            ack.ShouldNotBeNull($"every publish is acknowledged, not refused: {error}");
            acks.Add(ack.Value.RequestId - 1_000_000, ack.Value.Sequence!.Value);
        }

        return acks;
    }

    /// <summary>Every stored message's payload, by subscribing from Retained and reading <paramref name="expected"/> of them, then checking nothing follows.</summary>
    private static async Task<List<string>> StoredPayloadsAsync(int port, string topic, int expected)
    {
        await using var reader = await RawConnection.ConnectAsync(port);
        await HeaderTests.SubscribeAsync(reader, topic, StartPosition.Retained);
        var payloads = new List<string>();
        for (var i = 0; i < expected; i++)
        {
            payloads.Add(Encoding.UTF8.GetString((await reader.ReceiveMessageAsync()).Payload.Span));
        }

        // A sentinel published now is the next message only if nothing else was stored.
        await using var sentinel = await RawConnection.ConnectAsync(port);
        (await sentinel.PublishAsync(new PublishFrame(1, topic, null, "sentinel"u8.ToArray()))).Ack.ShouldNotBeNull();
        Encoding.UTF8.GetString((await reader.ReceiveMessageAsync()).Payload.Span).ShouldBe("sentinel", $"'{topic}' holds exactly {expected} messages before the sentinel");
        return payloads;
    }
}
