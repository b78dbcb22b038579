using System.Diagnostics;

namespace Zaichik.Client.Extensions.Hosting.Internal;

/// <summary>Reads the publisher's W3C trace context from a message's headers.</summary>
internal static class TraceContext
{
    /// <summary>The publisher's span as a remote parent, or default when the message carries none (or a malformed one).</summary>
    public static ActivityContext ParentOf<T>(ZaichikMessage<T> message)
    {
        DistributedContextPropagator.Current.ExtractTraceIdAndState(
            message.Headers, ReadHeader, out var traceParent, out var traceState);
        return ActivityContext.TryParse(traceParent, traceState, isRemote: true, out var context) ? context : default;
    }

    private static void ReadHeader(object? carrier, string name, out string? value, out IEnumerable<string>? values)
    {
        values = null;
        value = carrier is ZaichikHeaders headers && headers.TryGetValue(name, out var text) ? text : null;
    }
}
