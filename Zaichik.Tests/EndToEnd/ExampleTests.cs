using Zaichik.Examples.Compaction;
using Zaichik.Examples.Echo;
using Zaichik.Examples.Groups;
using Zaichik.Examples.Retention;
using Zaichik.Examples.Worker;

namespace Zaichik.Tests.EndToEnd;

/// <summary>The examples' flows, run against a real in-process server, twice each (topic names are per run).</summary>
public sealed class ExampleTests
{
    [Fact]
    public async Task Echo_example_receives_its_own_message()
    {
        await using var server = await TestServer.StartAsync();

        (await RunTwiceAsync(output => EchoExample.RunAsync("127.0.0.1", server.Port, output, CancellationToken.None)))
            .ShouldContain("Hello, Zaichik!");
    }

    [Fact]
    public async Task Retention_example_second_client_receives_the_earlier_message()
    {
        await using var server = await TestServer.StartAsync();

        await RunTwiceAsync(output => RetentionExample.RunAsync("127.0.0.1", server.Port, output, CancellationToken.None));
    }

    [Fact]
    public async Task Compaction_example_subscriber_receives_exactly_two_messages()
    {
        await using var server = await TestServer.StartAsync();

        (await RunTwiceAsync(output => CompactionExample.RunAsync("127.0.0.1", server.Port, output, CancellationToken.None)))
            .ShouldContain("99 acknowledged as duplicates");
    }

    [Fact]
    public async Task Groups_example_shares_the_jobs_and_dead_letters_the_poison_one()
    {
        await using var server = await TestServer.StartAsync();

        var output = await RunTwiceAsync(writer => GroupsExample.RunAsync("127.0.0.1", server.Port, writer, CancellationToken.None));
        output.ShouldContain("Dead letter: \"poison\"");
        output.ShouldContain("after 2 deliveries");
        output.ShouldNotContain("was already done");
    }

    [Fact]
    public async Task Worker_example_consumer_processes_the_three_published_orders()
    {
        await using var server = await TestServer.StartAsync();

        var output = await RunTwiceAsync(output => WorkerExample.RunAsync("127.0.0.1", server.Port, output, CancellationToken.None));

        output.ShouldContain("Processed order order-3");
        output.ShouldContain("All 3 orders processed and committed.");
        output.ShouldContain("Health: Healthy");
    }

    [Fact]
    public async Task Worker_example_exits_1_with_a_clear_message_when_no_server_is_listening()
    {
        var output = new StringWriter();

        var exitCode = await WorkerExample.RunAsync("127.0.0.1", 1, output, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        exitCode.ShouldBe(1, output.ToString());
        output.ToString().ShouldContain("not reachable at 127.0.0.1:1");
    }

    [Fact]
    public async Task Example_exits_1_with_a_clear_message_when_no_server_is_listening()
    {
        var output = new StringWriter();

        var exitCode = await EchoExample.RunAsync("127.0.0.1", 1, output, CancellationToken.None);

        exitCode.ShouldBe(1);
        output.ToString().ShouldContain("not reachable at 127.0.0.1:1");
    }

    private static async Task<string> RunTwiceAsync(Func<TextWriter, Task<int>> run)
    {
        var output = new StringWriter();
        for (var i = 0; i < 2; i++)
        {
            var exitCode = await run(output).WaitAsync(TimeSpan.FromSeconds(30));
            exitCode.ShouldBe(0, output.ToString());
        }

        return output.ToString();
    }
}
