using System.Security.Cryptography;
using Zaichik.Client;
using Zaichik.Protocol;
using Zaichik.Server.Hosting;
using Zaichik.Tests.Client;

namespace Zaichik.Tests.EndToEnd;

/// <summary>
/// WebSocket is only another way in: the same random publishes, pipelined and of every size up to the frame limit,
/// sent over TCP and over WebSocket must get the same Acks and come back to their subscribers byte for byte alike.
/// </summary>
public sealed class TransportDifferentialTests
{
    [Fact]
    public async Task A_WebSocket_client_gets_exactly_what_a_TCP_client_gets()
    {
        await using var server = await TestServer.StartAsync(options => options with
        {
            Listeners = new ListenerOptions { WebSocket = new WebSocketListenerOptions { Url = "http://127.0.0.1:0/ws" } },
        });
        var url = new Uri(server.State.Server().Listeners.Single(listener => listener.Kind == "websocket").Address);
        await using var tcp = await ZaichikClient.ConnectAsync("127.0.0.1", server.Port);
        await using var webSocket = await ZaichikClient.ConnectAsync(new ZaichikClientOptions { WebSocketUrl = url });
        var topicOptions = new TopicOptions { RetentionTtl = TimeSpan.FromHours(1), CompactionWindow = TimeSpan.FromHours(1) };
        await tcp.CreateTopicAsync("over-tcp", topicOptions);
        await webSocket.CreateTopicAsync("over-websocket", topicOptions);

        // Sizes from empty to just under the frame limit (1,081,344 bytes with the default settings), keys and headers
        // at random, the same for both; 32 publishes in flight on each connection.
        var random = new Random(20261129);
        var messages = Enumerable.Range(0, 300).Select(i =>
        {
            var size = random.Next(10) switch
            {
                0 => 0,
                < 6 => random.Next(1, 200),
                < 9 => random.Next(200, 70_000),
                _ => random.Next(70_000, 1_000_000),
            };
            var payload = new byte[size];
            random.NextBytes(payload);
            var key = random.Next(4) == 0 ? $"k{random.Next(20)}" : null;
            var headers = random.Next(3) == 0 ? new ZaichikHeaders().Add("n", $"{i}").Add("blob", new byte[random.Next(0, 300)]) : null;
            return (Payload: payload, Key: key, Headers: headers);
        }).ToList();

        var acks = await Task.WhenAll(PublishAllAsync(tcp, "over-tcp"), PublishAllAsync(webSocket, "over-websocket"));
        acks[1].ShouldBe(acks[0], "the same Acks (sequence, duplicate) in the same order");
        acks[0].Count(ack => !ack.Duplicate).ShouldBeGreaterThan(250, "most of them are stored");

        var received = await Task.WhenAll(ReadAllAsync(tcp, "over-tcp", acks[0]), ReadAllAsync(webSocket, "over-websocket", acks[1]));
        received[1].ShouldBe(received[0]);

        async Task<List<(long Sequence, bool Duplicate)>> PublishAllAsync(ZaichikClient client, string topic)
        {
            var pending = new List<Task<PublishResult>>();
            var results = new List<(long, bool)>();
            foreach (var (payload, key, headers) in messages)
            {
                pending.Add(client.PublishAsync(topic, payload, key is null ? null : System.Text.Encoding.UTF8.GetBytes(key), headers).AsTask());
                if (pending.Count == 32)
                {
                    results.Add(Outcome(await pending[0]));
                    pending.RemoveAt(0);
                }
            }

            foreach (var publish in pending)
            {
                results.Add(Outcome(await publish));
            }

            return results;
        }

        static (long, bool) Outcome(PublishResult result) => (result.Sequence, result.Duplicate);
    }

    /// <summary>Every stored message, as a subscriber from the retained messages gets it: sequence, key, headers and a hash of the payload.</summary>
    private static async Task<List<string>> ReadAllAsync(ZaichikClient client, string topic, List<(long Sequence, bool Duplicate)> acks)
    {
        var stored = acks.Count(ack => !ack.Duplicate);
        var subscription = await client.SubscribeAsync(topic, new SubscribeOptions { AckPolicy = AckPolicy.None, Prefetch = 64 });
        var messages = await ReconnectTests.ReadAsync(subscription, stored, TimeSpan.FromSeconds(60));
        return messages.Select(message =>
            $"{message.Sequence} key={message.KeyText ?? "none"} headers={string.Join(",", message.Headers.Select(header => $"{header.Key}:{Convert.ToHexString(header.Value.Span)}"))} "
            + $"payload={message.Payload.Length}:{Convert.ToHexString(SHA256.HashData(message.Payload.Span))}").ToList();
    }
}
