using Zaichik.Protocol;

namespace Zaichik.Tests.EndToEnd;

/// <summary>The server serves protocol versions 7 and 8 and answers Hello with the client's version.</summary>
public sealed class HelloNegotiationTests
{
    [Theory]
    [InlineData((ushort)7)]
    [InlineData((ushort)8)]
    public async Task A_Hello_of_a_served_version_is_answered_with_that_version_and_the_connection_serves(ushort version)
    {
        await using var server = await TestServer.StartAsync();
        await using var raw = await RawConnection.ConnectAsync(server.Port, hello: false);

        await raw.SendAsync(writer => FrameWriter.Write(writer, new HelloFrame(version, ProducerId: 42)));

        var hello = await raw.ReceiveHelloAsync();
        hello.Version.ShouldBe(version, "the server's Hello carries the negotiated version: the client's");
        hello.IdleTimeoutMs.ShouldBe((uint)server.Options.IdleTimeout.TotalMilliseconds);
        var (ack, error) = await raw.PublishAsync(new PublishFrame(1, $"negotiated-{version}", null, "x"u8.ToArray(), ProducerSequence: 1));
        error.ShouldBeNull();
        ack!.Value.Sequence.ShouldBe(1);
    }

    [Theory]
    [InlineData((ushort)6)]
    [InlineData((ushort)9)]
    public async Task A_Hello_outside_7_to_8_gets_UnsupportedVersion_naming_the_supported_range(ushort version)
    {
        await using var server = await TestServer.StartAsync();
        await using var raw = await RawConnection.ConnectAsync(server.Port, hello: false);

        await raw.SendAsync(writer => FrameWriter.Write(writer, new HelloFrame(version)));

        var reply = await raw.ReceiveAsync();
        reply.Type.ShouldBe(FrameType.Error);
        reply.Error!.Value.Code.ShouldBe(ErrorCode.UnsupportedVersion);
        reply.Error!.Value.RequestId.ShouldBeNull();
        reply.Error!.Value.Text.ShouldContain($"protocol version {version} is not supported");
        reply.Error!.Value.Text.ShouldContain("7 to 8");
        await raw.ShouldBeClosedByServerAsync();
    }
}
