using System.Buffers.Binary;
using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Tests.EndToEnd;

public sealed class ProtocolErrorTests
{
    [Fact]
    public async Task Unsupported_protocol_version_gets_an_error_and_the_connection_is_closed()
    {
        await using var server = await TestServer.StartAsync();
        await using var raw = await RawConnection.ConnectAsync(server.Port, hello: false);

        await raw.SendAsync(writer => FrameWriter.Write(writer, new HelloFrame(99)));

        var reply = await raw.ReceiveAsync();
        reply.Error!.Value.Code.ShouldBe(ErrorCode.UnsupportedVersion);
        reply.Error!.Value.Text.ShouldContain("99");
        await raw.ShouldBeClosedByServerAsync();
    }

    [Fact]
    public async Task A_version_2_Hello_gets_UnsupportedVersion_not_MalformedFrame()
    {
        await using var server = await TestServer.StartAsync();
        await using var raw = await RawConnection.ConnectAsync(server.Port, hello: false);

        // Version 2's Hello has no fields after the version.
        await raw.SendBytesAsync(new byte[] { 0, 0, 0, 3, 0x01, 0, 2 });

        var reply = await raw.ReceiveAsync();
        reply.Error!.Value.Code.ShouldBe(ErrorCode.UnsupportedVersion);
        reply.Error!.Value.Text.ShouldContain("version 2");
        await raw.ShouldBeClosedByServerAsync();
    }

    [Fact]
    public async Task A_request_before_Hello_is_a_protocol_violation()
    {
        await using var server = await TestServer.StartAsync();
        await using var raw = await RawConnection.ConnectAsync(server.Port, hello: false);

        await raw.SendAsync(writer => FrameWriter.Write(writer, new PublishFrame(1, "t", null, new byte[] { 1 })));

        (await raw.ReceiveAsync()).Error!.Value.Code.ShouldBe(ErrorCode.ProtocolViolation);
        await raw.ShouldBeClosedByServerAsync();
    }

    [Fact]
    public async Task Malformed_frame_gets_an_error_closes_that_connection_only_and_the_server_keeps_serving()
    {
        await using var server = await TestServer.StartAsync();
        var bystander = await server.ConnectAsync();
        await using var raw = await RawConnection.ConnectAsync(server.Port);

        await raw.SendBytesAsync(new byte[] { 0, 0, 0, 3, 0x7F, 1, 2 });

        (await raw.ReceiveAsync()).Error!.Value.Code.ShouldBe(ErrorCode.MalformedFrame);
        await raw.ShouldBeClosedByServerAsync();
        (await bystander.PublishAsync("still-served", "yes")).Duplicate.ShouldBeFalse();
    }

    [Fact]
    public async Task The_closing_Error_is_the_last_frame_even_while_a_subscription_is_delivering()
    {
        await using var server = await TestServer.StartAsync();
        var publisher = await server.ConnectAsync();
        await publisher.CreateTopicAsync("busy", new TopicOptions { RetentionTtl = TimeSpan.FromHours(1) });
        await Task.WhenAll(Enumerable.Range(0, 20_000).Select(i => publisher.PublishAsync("busy", $"m{i}").AsTask()));
        await using var raw = await RawConnection.ConnectAsync(server.Port);
        await raw.SendAsync(writer => FrameWriter.Write(writer, new SubscribeFrame(1, "busy", StartPosition.Retained, 10_000)));
        (await raw.ReceiveAsync()).Type.ShouldBe(FrameType.Ack);
        (await raw.ReceiveAsync()).Type.ShouldBe(FrameType.Message);

        // While up to 10,000 deliveries stream out, a frame of unknown type ends the connection.
        await raw.SendBytesAsync(new byte[] { 0, 0, 0, 1, 0xEE });

        var frames = await raw.ReceiveUntilClosedAsync();
        frames.ShouldNotBeEmpty();
        frames[^1].Type.ShouldBe(FrameType.Error, $"{frames.Count} frames after the violation; the closing Error must be the last");
        frames[^1].Error!.Value.Code.ShouldBe(ErrorCode.MalformedFrame);
    }

    [Fact]
    public async Task Oversized_frame_is_refused_from_its_length_alone()
    {
        await using var server = await TestServer.StartAsync(options => options with { MaxFrameSize = 64 * 1024, MaxPayloadSize = 44 * 1024 });
        await using var raw = await RawConnection.ConnectAsync(server.Port);
        var prefix = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(prefix, 10_000_000);

        await raw.SendBytesAsync(prefix);

        (await raw.ReceiveAsync()).Error!.Value.Code.ShouldBe(ErrorCode.FrameTooLarge);
        await raw.ShouldBeClosedByServerAsync();
    }

    [Fact]
    public async Task Frames_only_a_server_sends_are_refused()
    {
        await using var server = await TestServer.StartAsync();
        await using var raw = await RawConnection.ConnectAsync(server.Port);

        await raw.SendAsync(writer => FrameWriter.Write(writer, new AckFrame(1, 2, false)));

        (await raw.ReceiveAsync()).Error!.Value.Code.ShouldBe(ErrorCode.ProtocolViolation);
        await raw.ShouldBeClosedByServerAsync();
    }

    [Theory]
    [InlineData("")]
    [InlineData("../escape")]
    [InlineData("has space")]
    [InlineData(".hidden")]
    public async Task Invalid_topic_name_gets_an_error_for_that_request_and_the_connection_stays_open(string topic)
    {
        await using var server = await TestServer.StartAsync();
        await using var raw = await RawConnection.ConnectAsync(server.Port);

        await raw.SendAsync(writer => FrameWriter.Write(writer, new PublishFrame(7, topic, null, new byte[] { 1 })));
        var error = (await raw.ReceiveAsync()).Error!.Value;
        await raw.SendAsync(writer => FrameWriter.Write(writer, new PublishFrame(8, "valid", null, new byte[] { 1 })));
        var ack = (await raw.ReceiveAsync()).Ack!.Value;

        error.RequestId.ShouldBe(7UL);
        error.Code.ShouldBe(ErrorCode.InvalidTopicName);
        ack.RequestId.ShouldBe(8UL);
        server.Registry.Count.ShouldBe(1);
    }

    [Fact]
    public async Task Key_over_the_limit_is_refused_with_KeyTooLarge()
    {
        await using var server = await TestServer.StartAsync(options => options with { MaxKeySize = 16 });
        var client = await server.ConnectAsync();

        var error = await Should.ThrowAsync<ZaichikServerException>(async () =>
            await client.PublishAsync("keys", "payload", key: new string('k', 17)));

        error.Code.ShouldBe(ErrorCode.KeyTooLarge);
        (await client.PublishAsync("keys", "payload", key: new string('k', 16))).Duplicate.ShouldBeFalse();
    }

    [Fact]
    public async Task Payload_over_the_limit_is_refused_with_PayloadTooLarge()
    {
        await using var server = await TestServer.StartAsync(options => options with { MaxPayloadSize = 1_000 });
        var client = await server.ConnectAsync();

        var error = await Should.ThrowAsync<ZaichikServerException>(async () =>
            await client.PublishAsync("payloads", new byte[1_001]));

        error.Code.ShouldBe(ErrorCode.PayloadTooLarge);
        (await client.PublishAsync("payloads", new byte[1_000])).Duplicate.ShouldBeFalse();
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(10_001u)]
    public async Task Prefetch_outside_the_allowed_range_is_refused(uint prefetch)
    {
        await using var server = await TestServer.StartAsync();
        await using var raw = await RawConnection.ConnectAsync(server.Port);

        await raw.SendAsync(writer => FrameWriter.Write(writer, new SubscribeFrame(3, "prefetch", StartPosition.Latest, prefetch)));

        var error = (await raw.ReceiveAsync()).Error!.Value;
        error.RequestId.ShouldBe(3UL);
        error.Code.ShouldBe(ErrorCode.InvalidArgument);
    }

    [Fact]
    public async Task Unsubscribe_from_a_topic_not_subscribed_is_refused()
    {
        await using var server = await TestServer.StartAsync();
        var client = await server.ConnectAsync();

        var error = await Should.ThrowAsync<ZaichikServerException>(async () => await client.UnsubscribeAsync("never"));

        error.Code.ShouldBe(ErrorCode.NotSubscribed);
    }

    [Fact]
    public async Task Negative_retention_is_refused()
    {
        await using var server = await TestServer.StartAsync();
        await using var raw = await RawConnection.ConnectAsync(server.Port);

        await raw.SendAsync(writer => FrameWriter.Write(writer, new CreateTopicFrame(5, "negative", -1, 0)));

        (await raw.ReceiveAsync()).Error!.Value.Code.ShouldBe(ErrorCode.InvalidArgument);
    }

    [Fact]
    public async Task Too_many_subscriptions_on_one_connection_are_refused()
    {
        await using var server = await TestServer.StartAsync(options => options with { MaxSubscriptionsPerConnection = 2 });
        var client = await server.ConnectAsync();
        await client.SubscribeAsync("s1");
        await client.SubscribeAsync("s2");

        var error = await Should.ThrowAsync<ZaichikServerException>(async () => await client.SubscribeAsync("s3"));

        error.Code.ShouldBe(ErrorCode.TooManySubscriptions);
    }

    [Fact]
    public async Task Topics_beyond_the_maximum_are_not_created()
    {
        await using var server = await TestServer.StartAsync(options => options with { MaxTopics = 2 });
        var client = await server.ConnectAsync();
        await client.PublishAsync("t1", "x");
        await client.PublishAsync("t2", "x");

        var error = await Should.ThrowAsync<ZaichikServerException>(async () => await client.PublishAsync("t3", "x"));

        error.Code.ShouldBe(ErrorCode.TooManyTopics);
    }
}
