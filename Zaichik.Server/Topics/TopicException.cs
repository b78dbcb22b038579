using Zaichik.Protocol;

namespace Zaichik.Server.Topics;

/// <summary>A request about a topic that cannot be honoured; the session turns it into an Error frame.</summary>
internal sealed class TopicException(ErrorCode code, string message) : Exception(message)
{
    public ErrorCode Code { get; } = code;
}
