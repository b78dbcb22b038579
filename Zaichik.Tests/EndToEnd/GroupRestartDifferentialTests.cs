namespace Zaichik.Tests.EndToEnd;

/// <summary>
/// A consumer group must come through a broker restart as it comes through its member's connection dropping: the same
/// random commits, Nacks and departures (<see cref="GroupScript"/>) against a broker that restarts halfway and one whose
/// member only reconnects must give the same deliveries (sequence and delivery count, in order) and the same dead letters.
/// </summary>
public sealed class GroupRestartDifferentialTests
{
    [Theory]
    [InlineData(20261129)]
    [InlineData(7)]
    public async Task A_group_whose_broker_restarts_halfway_delivers_and_dead_letters_exactly_what_one_whose_member_reconnects_does(int seed)
    {
        await using var steady = await TestServer.StartAsync();
        await using var restarted = await TestServer.StartAsync();
        await using var reference = new GroupScript.SingleBroker(steady, restart: false);
        await using var subject = new GroupScript.SingleBroker(restarted, restart: true);

        await GroupScript.RunAsync(seed, reference, subject);
    }
}
