using Zaichik.Client;
using Zaichik.Protocol;

namespace Zaichik.Tests.Client;

/// <summary>
/// The client announces protocol version 8 and works with a server of version 7 or 8: one that answers 7, and one that
/// speaks only 7 and refuses 8 (the client then says 7). Codes it does not know, like a cluster node's NotLeader to a
/// version 7 client, fail the request with the server's text and leave the connection open.
/// </summary>
public sealed class VersionNegotiationTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_server_that_answers_version_7_is_served_with_its_idle_timeout_read()
    {
        await using var server = new FakeServer(idleTimeoutMs: 30_000, answerVersion: 7);

        var connecting = ZaichikClient.ConnectAsync("127.0.0.1", server.Port).AsTask();
        var connection = await server.AcceptAsync();
        await using var client = await connecting.WaitAsync(Patience);

        server.LastClientHello!.Value.Version.ShouldBe((ushort)8, "the client announces the version it speaks");
        client.ServerProtocolVersion.ShouldBe((ushort)7);
        client.ServerIdleTimeout.ShouldBe(TimeSpan.FromSeconds(30), "a version 7 Hello has the same fields: its idle timeout is read");
        var publishing = client.PublishAsync("orders", "x").AsTask();
        var publish = await connection.ReceiveAsync<PublishFrame>();
        await connection.SendAsync(new AckFrame(publish.RequestId, 1, Duplicate: false));
        (await publishing.WaitAsync(Patience)).Sequence.ShouldBe(1);
        connection.Drop();
    }

    [Fact]
    public async Task A_server_that_speaks_only_version_7_is_connected_to_again_with_a_version_7_Hello()
    {
        await using var server = new FakeServer(idleTimeoutMs: 30_000, onlyVersion: 7);

        var connecting = ZaichikClient.ConnectAsync("127.0.0.1", server.Port).AsTask();
        await server.AcceptAsync();
        server.LastClientHello!.Value.Version.ShouldBe((ushort)8);
        var connection = await server.AcceptAsync();
        await using var client = await connecting.WaitAsync(Patience);

        server.LastClientHello!.Value.Version.ShouldBe((ushort)7, "refused version 8, the client says 7");
        client.ServerProtocolVersion.ShouldBe((ushort)7);
        client.ServerIdleTimeout.ShouldBe(TimeSpan.FromSeconds(30));
        var publishing = client.PublishAsync("orders", "x").AsTask();
        var publish = await connection.ReceiveAsync<PublishFrame>();
        await connection.SendAsync(new AckFrame(publish.RequestId, 1, Duplicate: false));
        (await publishing.WaitAsync(Patience)).Sequence.ShouldBe(1);
        connection.Drop();
    }

    [Theory]
    [InlineData((ushort)6)]
    [InlineData((ushort)9)]
    public async Task A_server_Hello_of_a_version_the_client_does_not_speak_is_refused_with_UnsupportedVersion(ushort version)
    {
        await using var server = new FakeServer(answerVersion: version);

        var connecting = ZaichikClient.ConnectAsync("127.0.0.1", server.Port).AsTask();
        await server.AcceptAsync();

        var error = await Should.ThrowAsync<ZaichikServerException>(connecting.WaitAsync(Patience));
        error.Code.ShouldBe(ErrorCode.UnsupportedVersion);
        error.Message.ShouldContain($"answered with protocol version {version}; this client speaks versions 7 to 8");
    }

    [Theory]
    [InlineData(ErrorCode.NotLeader)]
    [InlineData((ErrorCode)999)]
    public async Task An_Error_the_client_does_not_act_on_fails_the_request_with_its_text_and_the_connection_stays_open(ErrorCode code)
    {
        await using var server = new FakeServer();
        var connecting = ZaichikClient.ConnectAsync("127.0.0.1", server.Port).AsTask();
        var connection = await server.AcceptAsync();
        await using var client = await connecting.WaitAsync(Patience);

        var publishing = client.PublishAsync("orders", "x").AsTask();
        var publish = await connection.ReceiveAsync<PublishFrame>();
        await connection.SendAsync(new ErrorFrame(publish.RequestId, code, "node n2 leads topic 'orders'; connect to 127.0.0.1:7001"));

        var error = await Should.ThrowAsync<ZaichikServerException>(publishing.WaitAsync(Patience));
        error.Code.ShouldBe(code);
        error.ServerMessage.ShouldBe("node n2 leads topic 'orders'; connect to 127.0.0.1:7001");
        client.IsConnected.ShouldBeTrue("a refused request must not end the connection");
        var again = client.PublishAsync("orders", "y").AsTask();
        var second = await connection.ReceiveAsync<PublishFrame>();
        await connection.SendAsync(new AckFrame(second.RequestId, 1, Duplicate: false));
        (await again.WaitAsync(Patience)).Sequence.ShouldBe(1);
        connection.Drop();
    }
}
