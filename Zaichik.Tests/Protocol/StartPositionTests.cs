using Zaichik.Protocol;

namespace Zaichik.Tests.Protocol;

/// <summary>The factories build only positions the server accepts, and every position reads well in logs.</summary>
public sealed class StartPositionTests
{
    [Fact]
    public void Default_start_position_is_Retained_with_no_value()
    {
        var position = default(StartPosition);

        position.ShouldBe(StartPosition.Retained, "a SubscribeFrame or SubscribeOptions left at its default must start with the retained messages");
        position.Kind.ShouldBe(StartPositionKind.Retained);
        position.Value.ShouldBe(0, "Retained is sent with position 0");
    }

    [Fact]
    public void Latest_has_kind_Latest_and_value_0()
    {
        StartPosition.Latest.Kind.ShouldBe(StartPositionKind.Latest);
        StartPosition.Latest.Value.ShouldBe(0, "Latest is sent with position 0");
    }

    [Theory]
    [InlineData(1L)]
    [InlineData(42L)]
    [InlineData(long.MaxValue)]
    public void Sequence_carries_the_first_sequence_wanted(long sequence)
    {
        var position = StartPosition.Sequence(sequence);

        position.Kind.ShouldBe(StartPositionKind.Sequence);
        position.Value.ShouldBe(sequence);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(-1L)]
    [InlineData(long.MinValue)]
    public void Sequence_below_1_is_refused_because_sequences_start_at_1(long sequence)
    {
        var thrown = Should.Throw<ArgumentOutOfRangeException>(() => StartPosition.Sequence(sequence));

        thrown.ParamName.ShouldBe("sequence");
    }

    [Fact]
    public void Time_from_a_DateTimeOffset_carries_its_Unix_milliseconds_whatever_its_offset()
    {
        var time = new DateTimeOffset(2026, 11, 27, 13, 0, 0, 123, TimeSpan.FromHours(3));

        var position = StartPosition.Time(time);

        position.Kind.ShouldBe(StartPositionKind.Time);
        position.Value.ShouldBe(1_795_773_600_123, "13:00:00.123 at UTC+3 is 10:00:00.123 UTC");
        position.ShouldBe(StartPosition.Time(1_795_773_600_123L), "both overloads must build the same position");
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(1_795_773_600_000L)]
    [InlineData(long.MaxValue)]
    public void Time_from_Unix_milliseconds_keeps_them(long unixTimeMilliseconds)
    {
        var position = StartPosition.Time(unixTimeMilliseconds);

        position.Kind.ShouldBe(StartPositionKind.Time);
        position.Value.ShouldBe(unixTimeMilliseconds);
    }

    [Fact]
    public void Time_before_the_Unix_epoch_is_refused()
    {
        var beforeEpoch = DateTimeOffset.UnixEpoch.AddMilliseconds(-1);

        Should.Throw<ArgumentOutOfRangeException>(() => StartPosition.Time(beforeEpoch)).ParamName.ShouldBe("time");
        Should.Throw<ArgumentOutOfRangeException>(() => StartPosition.Time(-1L)).ParamName.ShouldBe("unixTimeMilliseconds");
    }

    [Fact]
    public void Positions_are_equal_when_kind_and_value_are()
    {
        StartPosition.Sequence(42).ShouldBe(StartPosition.Sequence(42));
        StartPosition.Sequence(42).ShouldNotBe(StartPosition.Sequence(43));
        StartPosition.Sequence(1).ShouldNotBe(StartPosition.Time(1), "the same value of another kind is another position");
        StartPosition.Retained.ShouldNotBe(StartPosition.Latest);
    }

    public static TheoryData<string, StartPosition> Texts() => new()
    {
        { "Retained", StartPosition.Retained },
        { "Latest", StartPosition.Latest },
        { "Sequence(42)", StartPosition.Sequence(42) },
        { "Time(2026-11-27T10:00:00.000Z)", StartPosition.Time(new DateTimeOffset(2026, 11, 27, 10, 0, 0, TimeSpan.Zero)) },
        { "Time(1970-01-01T00:00:00.000Z)", StartPosition.Time(0) },
        { "Time(2026-11-27T10:00:00.123Z)", StartPosition.Time(1_795_773_600_123) },
        { $"Time({long.MaxValue} ms)", StartPosition.Time(long.MaxValue) },
    };

    [Theory]
    [MemberData(nameof(Texts))]
    public void ToString_names_the_kind_and_shows_the_value_readably(string expected, StartPosition position)
    {
        position.ToString().ShouldBe(expected);
    }

    [Fact]
    public void ToString_shows_a_value_a_peer_sent_with_Retained_or_Latest_instead_of_hiding_it()
    {
        // Only decoding builds these; a log line must show what was on the wire.
        new StartPosition(StartPositionKind.Retained, 5).ToString().ShouldBe("Retained(5)");
        new StartPosition(StartPositionKind.Time, -1).ToString().ShouldBe("Time(-1 ms)");
    }

    [Fact]
    public void SubscribeFrame_text_shows_its_start_position()
    {
        var frame = new SubscribeFrame(3, "orders", StartPosition.Sequence(42), 1);

        frame.ToString().ShouldContain("From = Sequence(42)");
    }
}
