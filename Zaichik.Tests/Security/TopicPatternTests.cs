using Zaichik.Server.Security;

namespace Zaichik.Tests.Security;

public sealed class TopicPatternTests
{
    [Theory]
    [InlineData("orders", "orders", true)]
    [InlineData("orders", "orders.eu", false)]
    [InlineData("orders", "order", false)]
    [InlineData("orders.*", "orders.eu", true)]
    [InlineData("orders.*", "orders", false)]
    [InlineData("orders.*", "orders.eu.paid", false)]
    [InlineData("orders.*", "payments.eu", false)]
    [InlineData("orders.>", "orders.eu", true)]
    [InlineData("orders.>", "orders.eu.paid", true)]
    [InlineData("orders.>", "orders", false)]
    [InlineData("*.paid", "orders.paid", true)]
    [InlineData("*.paid", "orders.eu.paid", false)]
    [InlineData("*.*.paid", "orders.eu.paid", true)]
    [InlineData(">", "anything", true)]
    [InlineData(">", "any.thing.at.all", true)]
    [InlineData("*", "single", true)]
    [InlineData("*", "two.segments", false)]
    [InlineData("orders.*", "orders.", false)]
    [InlineData("a.b", "a.bc", false)]
    public void Patterns_match_whole_segments(string pattern, string topic, bool matches)
    {
        var parsed = TopicPattern.TryParse(pattern, out var problem);

        problem.ShouldBeNull();
        parsed!.Matches(topic).ShouldBe(matches, $"'{pattern}' against '{topic}'");
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("orders..eu")]
    [InlineData(".orders")]
    [InlineData("orders.")]
    [InlineData(">.orders")]
    [InlineData("orders.eu*")]
    [InlineData("orders.>>")]
    [InlineData("orders/eu")]
    public void Malformed_patterns_are_refused_with_a_reason(string pattern)
    {
        TopicPattern.TryParse(pattern, out var problem).ShouldBeNull();

        problem.ShouldNotBeNullOrWhiteSpace();
    }
}
