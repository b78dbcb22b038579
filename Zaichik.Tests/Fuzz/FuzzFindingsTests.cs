using Zaichik.Protocol;
using Zaichik.Server.Topics;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Fuzz;

/// <summary>What the fuzzers found, pinned down as ordinary tests.</summary>
public sealed class FuzzFindingsTests
{
    /// <summary>
    /// Found by <see cref="ServerFuzzTests"/>. Beyond TimeSpan's range the topic's constructor threw out of the session:
    /// the connection was dropped without an Error, topic.json stayed on disk and the topic was quarantined at the next
    /// start. Between 2^32 - 1 ms and that, the committer's timer threw and the topic's background commits stopped.
    /// </summary>
    [Theory]
    [InlineData(long.MaxValue)]
    [InlineData(4_294_967_295L)]
    public async Task A_commit_interval_longer_than_a_timer_can_wait_is_refused_and_the_connection_stays_open(long commitIntervalMs)
    {
        var logs = new CapturingLoggerProvider();
        await using var server = await TestServer.StartAsync(logs: logs);
        await using var raw = await RawConnection.ConnectAsync(server.Port);

        await raw.SendAsync(writer => FrameWriter.Write(writer, new CreateTopicFrame(1, "forever", 0, 0, Durability.Interval, commitIntervalMs)));
        var refused = (await raw.ReceiveAsync()).Error;
        await raw.SendAsync(writer => FrameWriter.Write(writer, new CreateTopicFrame(2, "longest", 0, 0, Durability.Interval, TopicSettings.MaxCommitIntervalMs)));
        var accepted = (await raw.ReceiveAsync()).Ack;

        refused.ShouldNotBeNull("the CreateTopic should be answered with an Error, not by dropping the connection");
        refused.Value.RequestId.ShouldBe(1UL);
        refused.Value.Code.ShouldBe(ErrorCode.InvalidArgument);
        accepted.ShouldNotBeNull("the longest interval a timer can wait is allowed");
        accepted.Value.RequestId.ShouldBe(2UL);
        Directory.Exists(Path.Combine(server.DataPath, "topics", "forever")).ShouldBeFalse("a refused topic leaves no folder behind");
        logs.Lines.ShouldNotContain(line => line.StartsWith("Error:", StringComparison.Ordinal));
    }
}
