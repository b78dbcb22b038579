using System.Buffers.Binary;
using Zaichik.Client;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Load;

/// <summary>
/// Found by <see cref="SlowConsumerTests"/>: once the send buffer was full, a publish that found room overtook publishes
/// waiting for it, and waiters woke in no fixed order, so publishes issued in order were stored out of order.
/// </summary>
public sealed class PublishOrderTests
{
    [Fact]
    public async Task Publishes_issued_in_order_by_one_caller_are_stored_in_that_order_when_the_send_buffer_is_full()
    {
        await using var server = await TestServer.StartAsync();
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port, ZaichikClientOptions.Default with { SendBufferSize = 4096 });
        var payloads = Enumerable.Range(0, 2_000).Select(i =>
        {
            var payload = new byte[1024];
            BinaryPrimitives.WriteInt32BigEndian(payload, i);
            return payload;
        }).ToArray();

        var acks = await Task.WhenAll(payloads.Select(payload => client.PublishAsync("in-call-order", payload).AsTask()));

        var overtaken = Enumerable.Range(1, acks.Length - 1).Count(i => acks[i].Sequence < acks[i - 1].Sequence);
        overtaken.ShouldBe(0, $"{overtaken} of {acks.Length} publishes were stored before one issued earlier");
    }

    [Fact]
    public async Task Publishes_keep_call_order_when_the_pending_request_slots_are_full()
    {
        await using var server = await TestServer.StartAsync();
        await using var client = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port, ZaichikClientOptions.Default with { MaxPendingRequests = 8 });

        var acks = await Task.WhenAll(Enumerable.Range(0, 2_000).Select(i => client.PublishAsync("slots-in-call-order", $"m{i}").AsTask()));

        var overtaken = Enumerable.Range(1, acks.Length - 1).Count(i => acks[i].Sequence < acks[i - 1].Sequence);
        overtaken.ShouldBe(0, $"{overtaken} of {acks.Length} publishes were stored before one issued earlier");
    }
}
