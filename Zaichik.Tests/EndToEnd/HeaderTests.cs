using System.Buffers;
using System.Text.Json.Nodes;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Tests.Protocol;
using Zaichik.Tests.Storage;

namespace Zaichik.Tests.EndToEnd;

/// <summary>A Publish's header block is stored with its message and delivered unchanged, live, replayed and after a restart.</summary>
public sealed class HeaderTests
{
    private static readonly byte[] Headers = Block(("trace-id", true, "4bf92f3577b34da6"u8.ToArray()), ("raw", false, [0, 1, 0xFF]), ("trace-id", true, "again"u8.ToArray()));

    [Fact]
    public async Task Headers_are_delivered_unchanged_live_and_on_replay()
    {
        await using var server = await TestServer.StartAsync();
        await using var publisher = await RawConnection.ConnectAsync(server.Port);
        await CreateRetainedTopicAsync(publisher, "headers");
        await using var live = await RawConnection.ConnectAsync(server.Port);
        await SubscribeAsync(live, "headers", StartPosition.Latest);

        (await publisher.PublishAsync(new PublishFrame(2, "headers", "k"u8.ToArray(), "with"u8.ToArray(), Headers: Headers))).Ack.ShouldNotBeNull();
        (await publisher.PublishAsync(new PublishFrame(3, "headers", null, "without"u8.ToArray()))).Ack.ShouldNotBeNull();

        await using var replay = await RawConnection.ConnectAsync(server.Port);
        await SubscribeAsync(replay, "headers", StartPosition.Retained);
        foreach (var (reader, how) in new[] { (live, "live"), (replay, "replayed") })
        {
            var first = await reader.ReceiveMessageAsync();
            first.Headers.ToArray().ShouldBe(Headers, $"{how}: the header block arrives byte for byte as published");
            first.Payload.ToArray().ShouldBe("with"u8.ToArray(), how);
            first.Key!.Value.ToArray().ShouldBe("k"u8.ToArray(), how);
            var second = await reader.ReceiveMessageAsync();
            second.Headers.Length.ShouldBe(0, $"{how}: a message published without headers has none");
            second.Payload.ToArray().ShouldBe("without"u8.ToArray(), how);
        }
    }

    [Fact]
    public async Task Headers_survive_a_restart_also_on_messages_split_over_several_log_pages()
    {
        // 20 KiB of headers is larger than a 16 KiB log page: the headers themselves are split across fragments.
        var pageSizedHeaders = Block(("big", false, Enumerable.Range(0, 20_000).Select(i => (byte)(i % 253)).ToArray()));
        var largePayload = Enumerable.Range(0, 100_000).Select(i => (byte)(i % 241)).ToArray();
        await using var server = await TestServer.StartAsync(options => options with { MaxHeadersSize = 32 * 1024, MaxPayloadSize = 512 * 1024 });
        await using (var publisher = await RawConnection.ConnectAsync(server.Port))
        {
            await CreateRetainedTopicAsync(publisher, "split");
            (await publisher.PublishAsync(new PublishFrame(2, "split", "key"u8.ToArray(), largePayload, Headers: Headers))).Ack.ShouldNotBeNull();
            (await publisher.PublishAsync(new PublishFrame(3, "split", null, "small"u8.ToArray(), Headers: pageSizedHeaders))).Ack.ShouldNotBeNull();
            (await publisher.PublishAsync(new PublishFrame(4, "split", null, largePayload, Headers: pageSizedHeaders))).Ack.ShouldNotBeNull();
        }

        await server.RestartAsync();

        await using var reader = await RawConnection.ConnectAsync(server.Port);
        await SubscribeAsync(reader, "split", StartPosition.Retained);
        var first = await reader.ReceiveMessageAsync();
        first.Headers.ToArray().ShouldBe(Headers, "a payload split over pages keeps its headers");
        first.Payload.ToArray().ShouldBe(largePayload);
        first.Key!.Value.ToArray().ShouldBe("key"u8.ToArray());
        var second = await reader.ReceiveMessageAsync();
        second.Headers.ToArray().ShouldBe(pageSizedHeaders, "headers larger than a page are split and put together again");
        second.Payload.ToArray().ShouldBe("small"u8.ToArray());
        var third = await reader.ReceiveMessageAsync();
        third.Headers.ToArray().ShouldBe(pageSizedHeaders);
        third.Payload.ToArray().ShouldBe(largePayload);
    }

    [Fact]
    public async Task Headers_over_MaxHeadersSize_get_HeadersTooLarge_nothing_is_stored_and_the_connection_stays_open()
    {
        await using var server = await TestServer.StartAsync(options => options with { MaxHeadersSize = 100 });
        await using var raw = await RawConnection.ConnectAsync(server.Port);

        var refused = await raw.PublishAsync(new PublishFrame(1, "limited", null, "x"u8.ToArray(), Headers: FuzzBlock(101)));
        var accepted = await raw.PublishAsync(new PublishFrame(2, "limited", null, "y"u8.ToArray(), Headers: FuzzBlock(100)));

        refused.Error!.Value.Code.ShouldBe(ErrorCode.HeadersTooLarge);
        refused.Error.Value.RequestId.ShouldBe(1UL);
        accepted.Ack!.Value.Sequence.ShouldBe(1, "the refused publish was not stored: the first stored message is sequence 1");
    }

    [Fact]
    public async Task A_malformed_header_block_closes_the_connection_with_MalformedFrame()
    {
        await using var server = await TestServer.StartAsync();
        await using var raw = await RawConnection.ConnectAsync(server.Port);

        // Kind 2 is neither bytes (0) nor text (1).
        var badBlock = WireBuilder.Frame((byte)0).U8(2).Str("k").Bytes([1]).FieldBytes();
        await raw.SendBytesAsync(WireBuilder.Frame(FrameType.Publish).U64(1).Str("t").U8(0).Bytes([1]).U64(0).Bytes(badBlock).Build());

        var frames = await raw.ReceiveUntilClosedAsync();
        frames.ShouldHaveSingleItem().Error!.Value.Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    [Fact]
    public async Task A_data_folder_written_in_storage_format_2_is_still_read_and_takes_new_messages_with_headers()
    {
        await using var server = await TestServer.StartAsync();
        // A broker before format 3 knew no producers and no headers: publish as a client of that time did, with raw
        // frames (the client adds trace headers when any test in the process listens to its spans).
        await using (var before = await RawConnection.ConnectAsync(server.Port))
        {
            await CreateRetainedTopicAsync(before, "old");
            (await before.PublishAsync(new PublishFrame(1, "old", "k1"u8.ToArray(), "one"u8.ToArray()))).Ack!.Value.Sequence.ShouldBe(1);
            (await before.PublishAsync(new PublishFrame(2, "old", null, "two"u8.ToArray()))).Ack!.Value.Sequence.ShouldBe(2);
            (await before.PublishAsync(new PublishFrame(3, "old", null, new byte[70_000]))).Ack!.Value.Sequence.ShouldBe(3);
        }

        await server.Server.DisposeAsync();
        var folder = Path.Combine(server.DataPath, "topics", "old");
        LogFiles.RewriteAsFormat2(folder, server.Options.Storage).ShouldBeGreaterThan(3, "three messages, the last split into several records");

        await server.RestartAsync();
        await using (var raw = await RawConnection.ConnectAsync(server.Port))
        {
            (await raw.PublishAsync(new PublishFrame(1, "old", null, "four"u8.ToArray(), Headers: Headers))).Ack!.Value.Sequence.ShouldBe(4);
        }

        JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "topic.json")))!["format"]!.GetValue<int>()
            .ShouldBe(3, "a folder that takes format 3 records declares format 3, so an older broker refuses it instead of losing them");
        await using var reader = await RawConnection.ConnectAsync(server.Port);
        await SubscribeAsync(reader, "old", StartPosition.Retained);
        var messages = new List<MessageFrame>();
        for (var i = 0; i < 4; i++)
        {
            messages.Add(await reader.ReceiveMessageAsync());
        }

        messages.Select(m => m.Sequence).ShouldBe([1, 2, 3, 4]);
        messages[0].Payload.ToArray().ShouldBe("one"u8.ToArray());
        messages[0].Key!.Value.ToArray().ShouldBe("k1"u8.ToArray());
        messages[1].Payload.ToArray().ShouldBe("two"u8.ToArray());
        messages[2].Payload.Length.ShouldBe(70_000);
        messages.Take(3).ShouldAllBe(m => m.Headers.Length == 0);
        messages[3].Headers.ToArray().ShouldBe(Headers);
    }

    internal static async Task CreateRetainedTopicAsync(RawConnection connection, string topic, Durability durability = Durability.ServerDefault)
    {
        await connection.SendAsync(writer => FrameWriter.Write(writer, new CreateTopicFrame(1_000, topic, 3_600_000, 0, durability)));
        (await connection.ReceiveAsync()).Ack.ShouldNotBeNull($"topic '{topic}' is created");
    }

    internal static async Task SubscribeAsync(RawConnection connection, string topic, StartPosition from)
    {
        await connection.SendAsync(writer => FrameWriter.Write(writer, new SubscribeFrame(2_000, topic, from, 1_000)));
        (await connection.ReceiveAsync()).Ack.ShouldNotBeNull($"the subscription to '{topic}' is accepted");
    }

    private static byte[] Block(params (string Key, bool IsText, byte[] Value)[] entries)
    {
        var block = new ArrayBufferWriter<byte>();
        foreach (var (key, isText, value) in entries)
        {
            HeaderBlock.WriteEntry(block, key, isText, value);
        }

        return block.WrittenSpan.ToArray();
    }

    private static byte[] FuzzBlock(int size) => Fuzz.FuzzCorpus.HeadersOf(size);
}
