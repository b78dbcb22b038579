using Microsoft.Extensions.Time.Testing;
using Zaichik.Cli.Commands;
using Zaichik.Cli.Infrastructure;
using Zaichik.Protocol;

namespace Zaichik.Tests.Cli;

/// <summary>The command line's own parsing and pacing, without a broker.</summary>
public sealed class CliParsingTests
{
    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("10s", 10_000)]
    [InlineData("5m", 300_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("7d", 604_800_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("0", 0)]
    public void Durations_read_ms_s_m_h_and_d(string text, long milliseconds)
    {
        Durations.TryParse(text, out var duration).ShouldBeTrue(text);
        duration.ShouldBe(TimeSpan.FromMilliseconds(milliseconds));
    }

    [Theory]
    [InlineData("")]
    [InlineData("10")]
    [InlineData("5q")]
    [InlineData("ms")]
    [InlineData("-5m")]
    public void Durations_refuse_what_is_not_one(string text) => Durations.TryParse(text, out _).ShouldBeFalse(text);

    [Theory]
    [InlineData(3_600_000, "1h")]
    [InlineData(90_000, "90s")]
    [InlineData(1_500, "1500ms")]
    [InlineData(0, "0")]
    public void Durations_print_in_the_shortest_exact_unit(long milliseconds, string text) => Durations.Format(milliseconds).ShouldBe(text);

    [Fact]
    public void From_reads_retained_latest_a_sequence_and_absolute_or_relative_times()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 27, 21, 0, 0, TimeSpan.Zero));

        Parse("retained", time).ShouldBe(StartPosition.Retained);
        Parse("latest", time).ShouldBe(StartPosition.Latest);
        Parse("seq:42", time).ShouldBe(StartPosition.Sequence(42));
        Parse("time:2026-11-27T20:00:00Z", time).ShouldBe(StartPosition.Time(new DateTimeOffset(2026, 11, 27, 20, 0, 0, TimeSpan.Zero)));
        Parse("time:-5m", time).ShouldBe(StartPosition.Time(new DateTimeOffset(2026, 11, 27, 20, 55, 0, TimeSpan.Zero)));
        StartPositions.TryParse("seq:0", time, out _, out var problem).ShouldBeFalse();
        problem.ShouldNotBeNull().ShouldContain("seq:0");
        StartPositions.TryParse("soon", time, out _, out _).ShouldBeFalse();
    }

    [Theory]
    [InlineData("127.0.0.1:8889", "127.0.0.1", 8889)]
    [InlineData("broker.internal:9000", "broker.internal", 9000)]
    [InlineData("[::1]:8889", "::1", 8889)]
    public void Server_addresses_are_host_and_port(string text, string host, int port)
    {
        ServerAddress.TryParse(text, out var address).ShouldBeTrue(text);
        address.ShouldBe(new ServerAddress(host, port));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData(":8889")]
    [InlineData("host:0")]
    [InlineData("host:70000")]
    public void Server_addresses_without_a_valid_port_are_refused(string text) => ServerAddress.TryParse(text, out _).ShouldBeFalse(text);

    [Fact]
    public async Task The_pacer_lets_one_send_through_per_interval_of_the_clock()
    {
        var time = new FakeTimeProvider();
        var pacer = new Pacer(time, rate: 2);

        await pacer.WaitForTurnAsync(0, CancellationToken.None);
        var second = pacer.WaitForTurnAsync(1, CancellationToken.None).AsTask();
        time.Advance(TimeSpan.FromMilliseconds(499));
        second.IsCompleted.ShouldBeFalse("the 2nd send at 2/s is due 500 ms after the start");
        time.Advance(TimeSpan.FromMilliseconds(1));
        await second.WaitAsync(TimeSpan.FromSeconds(10));
        var third = pacer.WaitForTurnAsync(2, CancellationToken.None).AsTask();
        third.IsCompleted.ShouldBeFalse("the 3rd is due at 1 s");
        time.Advance(TimeSpan.FromMilliseconds(500));
        await third.WaitAsync(TimeSpan.FromSeconds(10));
    }

    private static StartPosition Parse(string text, TimeProvider time)
    {
        StartPositions.TryParse(text, time, out var position, out var problem).ShouldBeTrue(problem);
        return position;
    }
}
