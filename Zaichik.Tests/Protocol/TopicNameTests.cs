using Zaichik.Protocol;

namespace Zaichik.Tests.Protocol;

public sealed class TopicNameTests
{
    [Theory]
    [InlineData("orders")]
    [InlineData("a")]
    [InlineData("Orders.EU-west_1")]
    [InlineData("0123456789")]
    [InlineData("a..b")]
    [InlineData("trailing-")]
    [InlineData("_leading_underscore")]
    [InlineData("-leading-dash")]
    public void Valid_topic_names_are_accepted(string name)
    {
        var problem = TopicName.Validate(name);

        problem.ShouldBeNull($"'{name}' uses only letters, digits, '.', '-' and '_' and does not start with '.'");
    }

    [Fact]
    public void Name_exactly_at_the_default_length_limit_is_accepted()
    {
        var name = new string('x', ProtocolLimits.DefaultMaxTopicNameLength);

        TopicName.Validate(name).ShouldBeNull();
    }

    [Theory]
    [InlineData(null, "empty")]
    [InlineData("", "empty")]
    [InlineData(".", "'.'")]
    [InlineData("..", "'.'")]
    [InlineData(".hidden", "'.'")]
    [InlineData("a/b", "'/'")]
    [InlineData("a\\b", "'\\'")]
    [InlineData("../etc", "'.'")]
    [InlineData("a b", "' '")]
    [InlineData(" a", "' '")]
    [InlineData("a\tb", "'\t'")]
    [InlineData("a:b", "':'")]
    [InlineData("a*b", "'*'")]
    [InlineData("a\0b", "'\0'")]
    [InlineData("тема", "'т'")]
    [InlineData("café", "'é'")]
    [InlineData("🐇", "'")]
    public void Invalid_topic_names_are_rejected_with_the_reason(string? name, string reasonMentions)
    {
        var problem = TopicName.Validate(name);

        problem.ShouldNotBeNull($"'{name}' must be rejected");
        problem.ShouldContain(reasonMentions, Case.Sensitive);
    }

    [Fact]
    public void Name_one_over_the_default_length_limit_is_rejected()
    {
        var name = new string('x', ProtocolLimits.DefaultMaxTopicNameLength + 1);

        var problem = TopicName.Validate(name);

        problem.ShouldNotBeNull();
        problem.ShouldContain("limit");
    }

    [Fact]
    public void Length_limit_can_be_lowered_by_the_caller()
    {
        var accepted = TopicName.Validate("abcde", maxLength: 5);
        var rejected = TopicName.Validate("abcdef", maxLength: 5);

        accepted.ShouldBeNull();
        rejected.ShouldNotBeNull();
    }
}
