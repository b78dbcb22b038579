using System.Net.Http.Json;
using System.Text.Json;
using Shouldly;
using Xunit;
using Zaichik.Client;

namespace Zaichik.Tests.Cluster;

/// <summary><c>GET /api/cluster</c>: every member's role, log position and lag, asked of the members' admin APIs.</summary>
public sealed class ClusterAdminTests
{
    private static readonly TimeSpan ElectionDeadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Any_node_shows_every_members_applied_index_and_lag_and_says_which_member_cannot_be_asked()
    {
        await using var cluster = await InProcessCluster.StartAsync(admin: true);
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        var follower = (leader + 1) % cluster.Count;
        var other = (leader + 2) % cluster.Count;
        await using (var client = await ZaichikClient.ConnectAsync("127.0.0.1", cluster.Server(leader).Port))
        {
            for (var i = 0; i < 30; i++)
            {
                await client.PublishAsync("audited", $"m{i}");
            }
        }

        using var http = new HttpClient();
        var leaderLast = cluster.Node(leader).Describe().LastIndex;
        leaderLast.ShouldBeGreaterThanOrEqualTo(30);

        // Asked of a follower: every member, the leader included, with its own indices; all caught up.
        // Every member's client address too: each node asks the others for theirs in the background, not only a new leader.
        var view = await WaitForAsync(http, cluster.AdminUrl(follower), members => members.All(member =>
            member.GetProperty("lag").ValueKind == JsonValueKind.Number && member.GetProperty("lag").GetInt64() == 0
            && member.GetProperty("clientEndpoint").ValueKind == JsonValueKind.String));
        foreach (var member in view)
        {
            var node = int.Parse(member.GetProperty("id").GetString()![1..], System.Globalization.CultureInfo.InvariantCulture) - 1;
            member.GetProperty("clientEndpoint").GetString().ShouldBe($"127.0.0.1:{cluster.Server(node).Port}");
            member.GetProperty("appliedIndex").GetInt64().ShouldBeGreaterThanOrEqualTo(leaderLast, member.ToString());
            member.GetProperty("error").ValueKind.ShouldBe(JsonValueKind.Null, member.ToString());
        }

        view.Single(member => member.GetProperty("isLeader").GetBoolean()).GetProperty("role").GetString().ShouldBe("Leader");
        view.Count(member => member.GetProperty("role").GetString() == "Follower").ShouldBe(2);

        // A member that is down: no indices, no lag, and why.
        await cluster.StopNodeAsync(other);
        var afterStop = await WaitForAsync(http, cluster.AdminUrl(leader), members => members.Any(member => member.GetProperty("error").ValueKind == JsonValueKind.String));
        var stopped = afterStop.Single(member => member.GetProperty("id").GetString() == $"n{other + 1}");
        stopped.GetProperty("lag").ValueKind.ShouldBe(JsonValueKind.Null);
        stopped.GetProperty("appliedIndex").ValueKind.ShouldBe(JsonValueKind.Null);
        afterStop.Single(member => member.GetProperty("id").GetString() == $"n{follower + 1}").GetProperty("lag").ValueKind.ShouldBe(JsonValueKind.Number);

        // scope=local: the node alone, as the others ask it, without asking anyone.
        var local = await http.GetFromJsonAsync<JsonElement>(new Uri(cluster.AdminUrl(leader), "api/cluster?scope=local"));
        local.GetProperty("members").EnumerateArray().Where(member => !member.GetProperty("isSelf").GetBoolean())
            .ShouldAllBe(member => member.GetProperty("appliedIndex").ValueKind == JsonValueKind.Null);
    }

    [Fact]
    public async Task The_CLI_shows_the_cluster_and_makes_the_leader_step_down_whose_clients_then_go_on_with_the_next_one()
    {
        await using var cluster = await InProcessCluster.StartAsync(admin: true);
        var leader = await cluster.WaitForLeaderAsync(ElectionDeadline);
        var follower = (leader + 1) % cluster.Count;
        var leaderAdmin = cluster.AdminUrl(leader).ToString();

        var shown = await Cli.CliRunner.RunAsync("--admin", leaderAdmin, "cluster");
        shown.ExitCode.ShouldBe(0, shown.ToString());
        shown.Out.ShouldContain($"leader n{leader + 1}");
        for (var node = 0; node < cluster.Count; node++)
        {
            var id = $"n{node + 1}";
            var row = shown.Lines.Single(line => line.Contains($" {id} ", StringComparison.Ordinal));
            row.ShouldContain(node == leader ? "Leader" : "Follower", Case.Sensitive, shown.ToString());
        }

        // Only the leader can step down: a follower's admin API says which node leads, and the CLI fails with it.
        var refused = await Cli.CliRunner.RunAsync("--admin", cluster.AdminUrl(follower).ToString(), "cluster", "step-down");
        refused.ExitCode.ShouldNotBe(0, refused.ToString());
        refused.Error.ShouldContain("does not lead", Case.Sensitive, refused.ToString());

        await using var v7 = await EndToEnd.RawConnection.ConnectAsync(cluster.Server(leader).Port, version: 7);
        await v7.SendAsync(output => Zaichik.Protocol.FrameWriter.Write(output, new Zaichik.Protocol.PublishFrame(1, "audited", null, "v7"u8.ToArray())));
        (await v7.ReceiveAsync()).Type.ShouldBe(Zaichik.Protocol.FrameType.Ack);
        await using var client = await ZaichikClient.ConnectAsync(new ZaichikClientOptions
        {
            Host = "127.0.0.1",
            Port = cluster.Server(leader).Port,
            Servers = Enumerable.Range(0, cluster.Count).Where(node => node != leader).Select(node => $"127.0.0.1:{cluster.Server(node).Port}").ToArray(),
            Reconnect = new ZaichikReconnectOptions { MinDelay = TimeSpan.FromMilliseconds(50), MaxDelay = TimeSpan.FromMilliseconds(500) },
        });
        (await client.PublishAsync("audited", "before")).Sequence.ShouldBe(2);
        var term = cluster.Node(leader).Describe().Term;

        var stepped = await Cli.CliRunner.RunAsync("--admin", leaderAdmin, "cluster", "step-down");
        stepped.ExitCode.ShouldBe(0, stepped.ToString());
        stepped.Out.ShouldContain($"node n{leader + 1} stepped down as leader of term {term}");

        // The connections it served end with an Error that says why, the version 7 one included.
        var (type, error, _) = await v7.ReceiveAsync();
        type.ShouldBe(Zaichik.Protocol.FrameType.Error);
        error!.Value.Code.ShouldBeOneOf(Zaichik.Protocol.ErrorCode.NotLeader, Zaichik.Protocol.ErrorCode.NoLeader);
        error.Value.Text.ShouldContain($"cluster node n{leader + 1} no longer leads");

        // A new term with a leader that serves (it may be the same node, elected again), and the client goes on.
        var next = await cluster.WaitForLeaderAsync(ElectionDeadline);
        cluster.Node(next).Describe().Term.ShouldBeGreaterThan(term);
        (await client.PublishAsync("audited", "after")).Sequence.ShouldBe(3);
    }

    private static async Task<IReadOnlyList<JsonElement>> WaitForAsync(HttpClient http, Uri admin, Func<IReadOnlyList<JsonElement>, bool> condition)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        IReadOnlyList<JsonElement> members = [];
        while (!deadline.IsCancellationRequested)
        {
            var view = await http.GetFromJsonAsync<JsonElement>(new Uri(admin, "api/cluster"), deadline.Token);
            members = view.GetProperty("members").EnumerateArray().ToArray();
            if (condition(members))
            {
                return members;
            }

            await Task.Delay(50, deadline.Token);
        }

        throw new TimeoutException($"the cluster view never met the condition; last: {string.Join(Environment.NewLine, members)}");
    }
}
