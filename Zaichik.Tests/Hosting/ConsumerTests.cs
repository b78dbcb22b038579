using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Zaichik.Client;
using Zaichik.Client.Extensions.Hosting;
using Zaichik.Protocol;
using Zaichik.Tests.Client;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Hosting;

public sealed class ConsumerTests
{
    [Fact]
    public async Task Consumer_processes_typed_messages_in_order_and_commits_each()
    {
        await using var server = await TestServer.StartAsync();
        var probe = new ConsumerProbe { Topic = NewTopic(), DurableName = "billing" };
        var host = await StartConsumerAsync(server, probe);
        try
        {
            var client = host.Services.GetRequiredService<ZaichikClient>();
            await PublishOrdersAsync(client, probe.Topic, 3);

            await TestServer.EventuallyAsync(() => probe.Processed.Count == 3, "three orders processed");

            probe.Processed.ShouldBe([new Order("o-1", 1), new Order("o-2", 2), new Order("o-3", 3)]);
            probe.Attempts.ShouldBe([1L, 2L, 3L]);
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }

        (await FirstDeliveredToDurableAsync(server, probe.Topic, "billing", nextOrder: 4)).Sequence
            .ShouldBe(4, "all three were committed, so the durable consumer resumes at the next message");
    }

    [Theory]
    [InlineData(null)]
    [InlineData("retrying")]
    public async Task A_failed_message_is_not_committed_and_is_delivered_again(string? durableName)
    {
        await using var server = await TestServer.StartAsync();
        var failures = 0;
        var probe = new ConsumerProbe
        {
            Topic = NewTopic(),
            DurableName = durableName,
            Process = (message, _) => message.Value.Id == "o-2" && Interlocked.Increment(ref failures) == 1
                ? throw new InvalidOperationException("the first attempt at o-2 fails")
                : Task.CompletedTask,
        };
        var host = await StartConsumerAsync(server, probe);
        try
        {
            await PublishOrdersAsync(host.Services.GetRequiredService<ZaichikClient>(), probe.Topic, 3);

            await TestServer.EventuallyAsync(() => probe.Processed.Count == 3, "three orders processed");

            probe.Attempts.ToArray().ShouldBe(new[] { 1L, 2L, 2L, 3L }, "o-2 is delivered again after its failure, and nothing before it");
            probe.Processed.Select(order => order.Id).ShouldBe(["o-1", "o-2", "o-3"]);
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
    }

    [Fact]
    public async Task In_a_group_a_failed_message_is_given_back_with_Nack_and_the_next_one_goes_on()
    {
        await using var server = await TestServer.StartAsync();
        var failures = 0;
        var probe = new ConsumerProbe
        {
            Topic = NewTopic(),
            Group = "shipping",
            Process = (message, _) => message.Value.Id == "o-2" && Interlocked.Increment(ref failures) == 1
                ? throw new InvalidOperationException("the first attempt at o-2 fails")
                : Task.CompletedTask,
        };
        var host = await StartConsumerAsync(server, probe);
        try
        {
            await PublishOrdersAsync(host.Services.GetRequiredService<ZaichikClient>(), probe.Topic, 3);

            await TestServer.EventuallyAsync(() => probe.Processed.Count == 3, "three orders processed");

            probe.Attempts.Count(sequence => sequence == 2).ShouldBe(2, "o-2 came back after its Nack");
            probe.Processed.Select(order => order.Id).Order().ShouldBe(["o-1", "o-2", "o-3"]);
            probe.DeliveryCounts.Max().ShouldBe(2);
            await TestServer.EventuallyAsync(() => server.State.Groups(probe.Topic).Single().Pending == 0, "all three committed");
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
    }

    [Fact]
    public async Task Skip_commits_the_failed_message_and_goes_on()
    {
        await using var server = await TestServer.StartAsync();
        var probe = new ConsumerProbe
        {
            Topic = NewTopic(),
            DurableName = "skipping",
            FailureAction = ZaichikConsumerFailureAction.Skip,
            Process = (message, _) => message.Value.Id == "o-2" ? throw new InvalidOperationException("o-2 always fails") : Task.CompletedTask,
        };
        var host = await StartConsumerAsync(server, probe);
        try
        {
            await PublishOrdersAsync(host.Services.GetRequiredService<ZaichikClient>(), probe.Topic, 3);

            await TestServer.EventuallyAsync(() => probe.Attempts.Count == 3 && probe.Processed.Count == 2, "o-1 and o-3 processed, o-2 tried once");

            probe.Attempts.ShouldBe([1L, 2L, 3L]);
            probe.Processed.Select(order => order.Id).ShouldBe(["o-1", "o-3"]);
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }

        (await FirstDeliveredToDurableAsync(server, probe.Topic, "skipping", nextOrder: 4)).Sequence.ShouldBe(4, "the skipped o-2 was committed too");
    }

    // Through FakeServer, which hands the publish's header block back as the delivery's, as the broker does; the same
    // trace through a real broker is in Client/MessageFeaturesTests.
    [Fact]
    public async Task Processing_runs_in_a_consumer_activity_whose_parent_is_the_publishers_activity()
    {
        using var testSource = new ActivitySource("Zaichik.Tests.Hosting");
        var started = new ConcurrentQueue<Activity>();
        var probe = new ConsumerProbe { Topic = NewTopic() };
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is ZaichikTelemetry.ActivitySourceName or "Zaichik.Tests.Hosting",
            // Listeners are process-wide: record only this test's spans, so other tests' publishes carry no trace headers.
            Sample = (ref ActivityCreationOptions<ActivityContext> options) =>
                options.Source.Name == "Zaichik.Tests.Hosting" || options.Name.StartsWith(probe.Topic, StringComparison.Ordinal)
                    ? ActivitySamplingResult.AllDataAndRecorded
                    : ActivitySamplingResult.None,
            ActivityStarted = started.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        await using var broker = new FakeServer();
        var host = HostingFixture.BuildHost(HostingFixture.Broker(broker.Port), services =>
        {
            services.AddSingleton(probe);
            services.AddHostedService<ProbeConsumer>();
        });
        try
        {
            await host.StartAsync();
            var connection = await broker.AcceptAsync();
            var subscribe = await connection.ReceiveAsync<SubscribeFrame>();
            await connection.SendAsync(new AckFrame(subscribe.RequestId, 1, Duplicate: false));

            Activity request;
            using (request = testSource.StartActivity("handle request", ActivityKind.Server)!)
            {
                var publishing = host.Services.GetRequiredService<ZaichikClient>().PublishAsync(probe.Topic, new Order("o-1", 1)).AsTask();
                var publish = await connection.ReceiveAsync<PublishFrame>();
                await connection.SendAsync(new AckFrame(publish.RequestId, 1, Duplicate: false));
                await connection.SendAsync(new MessageFrame(probe.Topic, 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), null, publish.Payload, publish.Headers));
                await publishing;
            }

            await TestServer.EventuallyAsync(() => probe.Processed.Count == 1, "the order processed");

            var processing = probe.Activities.Single().ShouldNotBeNull("ProcessAsync runs inside an activity");
            var publishSpan = started.Where(a => a.TraceId == request.TraceId && a.Kind == ActivityKind.Producer).ShouldHaveSingleItem("the client's publish span");
            processing.Source.Name.ShouldBe(ZaichikTelemetry.ActivitySourceName);
            processing.Kind.ShouldBe(ActivityKind.Consumer);
            processing.DisplayName.ShouldBe($"{probe.Topic} process");
            processing.TraceId.ShouldBe(request.TraceId, "the consumer's activity continues the publisher's trace");
            processing.ParentSpanId.ShouldBe(publishSpan.SpanId, "its parent is the publisher's span");
            processing.HasRemoteParent.ShouldBeTrue();
            processing.GetTagItem("messaging.destination.name").ShouldBe(probe.Topic);
            (await connection.ReceiveAsync<CommitFrame>()).Sequence.ShouldBe(1, "the processed message is committed");
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
    }

    [Fact]
    public async Task Stopping_the_host_cancels_processing_and_leaves_the_message_uncommitted()
    {
        await using var server = await TestServer.StartAsync();
        var processing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var probe = new ConsumerProbe
        {
            Topic = NewTopic(),
            DurableName = "stopping",
            Process = async (_, cancellationToken) =>
            {
                processing.TrySetResult();
                await Task.Delay(Timeout.Infinite, cancellationToken);
            },
        };
        var host = await StartConsumerAsync(server, probe);
        try
        {
            await PublishOrdersAsync(host.Services.GetRequiredService<ZaichikClient>(), probe.Topic, 1);
            await processing.Task.WaitAsync(TimeSpan.FromSeconds(10));

            await host.StopAsync().WaitAsync(TimeSpan.FromSeconds(10));

            probe.Processed.ShouldBeEmpty();
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }

        (await FirstDeliveredToDurableAsync(server, probe.Topic, "stopping", nextOrder: 2)).Sequence
            .ShouldBe(1, "the message whose processing was cancelled was not committed");
    }

    // Retained: a non-durable consumer can be handed a failed message again only while the topic keeps it.
    private static readonly TopicOptions Retained = new() { RetentionTtl = TimeSpan.FromHours(1) };

    private static string NewTopic() => $"hosting-{Guid.NewGuid():N}"[..24];

    /// <summary>A host with the probe's consumer, its topic created before the consumer starts.</summary>
    private static async Task<IHost> StartConsumerAsync(TestServer server, ConsumerProbe probe)
    {
        var host = HostingFixture.BuildHost(HostingFixture.Broker(server.Port), services =>
        {
            services.AddSingleton(probe);
            services.AddHostedService<ProbeConsumer>();
        });
        await host.Services.GetRequiredService<ZaichikClient>().CreateTopicAsync(probe.Topic, Retained);
        await host.StartAsync();
        return host;
    }

    private static async Task PublishOrdersAsync(ZaichikClient client, string topic, int count)
    {
        for (var i = 1; i <= count; i++)
        {
            await client.PublishAsync(topic, new Order($"o-{i}", i));
        }
    }

    /// <summary>Subscribes with <paramref name="durableName"/> from a new client, publishes one more order and returns the first delivery.</summary>
    private static async Task<ZaichikMessage<Order>> FirstDeliveredToDurableAsync(TestServer server, string topic, string durableName, int nextOrder)
    {
        var client = await server.ConnectAsync();
        await using var subscription = await client.SubscribeAsync<Order>(topic, new SubscribeOptions { DurableName = durableName, From = StartPosition.Retained });
        await client.PublishAsync(topic, new Order($"o-{nextOrder}", nextOrder));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await foreach (var message in subscription.WithCancellation(timeout.Token))
        {
            return message;
        }

        throw new ShouldAssertException("nothing was delivered to the durable consumer within 10 s");
    }
}
