using System.Collections;
using Shouldly;
using Xunit;
using Zaichik.Server.Cluster;
using Zaichik.Server.Hosting;

namespace Zaichik.Tests.Cluster;

public sealed class ClusterOptionsTests
{
    private const string Peers = "n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=localhost:7103";

    private static ZaichikServerOptions Bind(string[] args, Dictionary<string, string>? environment = null) =>
        ZaichikConfiguration.BindOptions(ZaichikConfiguration.Build(args, new Hashtable(environment ?? [])));

    [Fact]
    public void Without_a_node_id_the_broker_is_a_single_node()
    {
        var options = Bind([]);
        options.Cluster.Enabled.ShouldBeFalse();
        options.Validate().ShouldBeEmpty();
    }

    [Fact]
    public void The_node_and_peers_switches_and_environment_variables_turn_cluster_mode_on()
    {
        var fromSwitches = Bind(["--node", "n2", "--peers", Peers]);
        fromSwitches.Cluster.Enabled.ShouldBeTrue();
        fromSwitches.Cluster.NodeId.ShouldBe("n2");
        fromSwitches.Validate().ShouldBeEmpty();
        fromSwitches.Cluster.Self().EndPoint.Port.ShouldBe(7102);
        fromSwitches.Cluster.ParsedPeers().Select(peer => peer.Id).ShouldBe(["n1", "n2", "n3"]);

        var fromEnvironment = Bind([], new()
        {
            ["Zaichik__Cluster__NodeId"] = "n3",
            ["Zaichik__Cluster__Peers"] = Peers,
            ["Zaichik__Cluster__ElectionTimeoutMin"] = "00:00:02",
            ["Zaichik__Cluster__ElectionTimeoutMax"] = "00:00:05",
        });
        fromEnvironment.Cluster.ElectionTimeoutMax.ShouldBe(TimeSpan.FromSeconds(5));
        fromEnvironment.Validate().ShouldBeEmpty();
    }

    [Theory]
    [InlineData("n1", "n1=127.0.0.1:7101,n2=127.0.0.1:7102", "at least 3")]
    [InlineData("n9", Peers, "'n9' is not among")]
    [InlineData("n1", "n1=127.0.0.1:7101,n2=127.0.0.1,n3=127.0.0.1:7103", "is not host:port")]
    [InlineData("n1", "n1=127.0.0.1:7101,n2=example.com:7102,n3=127.0.0.1:7103", "is not host:port")]
    [InlineData("n1", "n1=127.0.0.1:7101,n2=127.0.0.1:70000,n3=127.0.0.1:7103", "is not host:port")]
    [InlineData("n1", "n1=127.0.0.1:7101,127.0.0.1:7102,n3=127.0.0.1:7103", "is not id=host:port")]
    [InlineData("n1", "n1=127.0.0.1:7101,n1=127.0.0.1:7102,n3=127.0.0.1:7103", "names node 'n1' twice")]
    [InlineData("n1", "n1=127.0.0.1:7101,n2=127.0.0.1:7101,n3=127.0.0.1:7103", "to two nodes")]
    [InlineData("", Peers, "NodeId is not")]
    public void A_bad_cluster_setting_is_refused_with_a_message_naming_it(string nodeId, string peers, string expected)
    {
        var options = new ZaichikServerOptions { Cluster = new ClusterOptions { NodeId = nodeId, Peers = peers } };

        options.Validate().ShouldContain(problem => problem.Contains(expected), $"problems: {string.Join(" | ", options.Validate())}");
    }

    [Fact]
    public void Timeouts_groups_chunks_and_an_unreachable_host_are_checked()
    {
        var options = new ZaichikServerOptions
        {
            Host = "0.0.0.0",
            Cluster = new ClusterOptions
            {
                NodeId = "n1", Peers = Peers, ElectionTimeoutMin = TimeSpan.FromSeconds(3), ElectionTimeoutMax = TimeSpan.FromSeconds(2), DataGroups = 2,
                LogChunkBytes = 100, AdvertiseWebSocket = "http://127.0.0.1:1/ws", AdvertiseAdmin = "ftp://127.0.0.1:1", PeerAdminTimeout = TimeSpan.Zero,
                SnapshotEntries = -1,
            },
        };

        var problems = options.Validate();
        problems.ShouldContain(problem => problem.Contains("ElectionTimeoutMin/Max"));
        problems.ShouldContain(problem => problem.Contains("DataGroups is 2"));
        problems.ShouldContain(problem => problem.Contains("LogChunkBytes is 100"));
        problems.ShouldContain(problem => problem.Contains("SnapshotEntries is -1"));
        problems.ShouldContain(problem => problem.Contains("AdvertiseWebSocket"));
        problems.ShouldContain(problem => problem.Contains("Cluster:AdvertiseAdmin 'ftp://127.0.0.1:1' is not an http:// or https:// URL"));
        problems.ShouldContain(problem => problem.Contains("Cluster:PeerAdminTimeout is 00:00:00"));
        problems.ShouldContain(problem => problem.Contains("set Cluster:Advertise"));
        (options with { Cluster = options.Cluster with { Advertise = "10.0.0.1:8889" } }).Validate().ShouldNotContain(problem => problem.Contains("set Cluster:Advertise"));
    }
}
