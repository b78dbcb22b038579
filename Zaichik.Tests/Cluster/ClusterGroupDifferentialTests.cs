using Shouldly;
using Zaichik.Client;
using Zaichik.Tests.EndToEnd;
using Xunit;

namespace Zaichik.Tests.Cluster;

/// <summary>
/// A consumer group must come through its leader's loss as it comes through its member's connection dropping on a
/// single broker: the same random commits, Nacks and departures (<see cref="GroupScript"/>) against a single broker whose
/// member reconnects halfway and a 3-node cluster whose leader is stopped halfway must give the same deliveries (sequence
/// and delivery count, in order) and the same dead letters.
/// </summary>
public sealed class ClusterGroupDifferentialTests
{
    private static readonly TimeSpan ElectionDeadline = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(20261129)]
    [InlineData(7)]
    public async Task A_group_whose_leader_is_lost_halfway_delivers_and_dead_letters_exactly_what_a_single_broker_does(int seed)
    {
        await using var single = await TestServer.StartAsync();
        await using var cluster = await InProcessCluster.StartAsync();
        await using var reference = new GroupScript.SingleBroker(single, restart: false);
        await using var subject = new ClusterSide(cluster, await cluster.WaitForLeaderAsync(ElectionDeadline));

        await GroupScript.RunAsync(seed, reference, subject);
    }

    /// <summary>The member is on the leader; the disruption stops the leader, and the member joins the next one.</summary>
    private sealed class ClusterSide(InProcessCluster cluster, int leader) : GroupScript.GroupSide
    {
        private int _leader = leader;

        protected override async Task<ZaichikClient> ConnectAsync() => await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(_leader).Port);

        protected override async Task AfterDisconnectAsync()
        {
            var old = _leader;
            await cluster.StopNodeAsync(old);
            _leader = await cluster.WaitForLeaderAsync(ElectionDeadline, except: old);
            await cluster.StartNodeAsync(old);
        }
    }
}
