using Zaichik.Protocol;

namespace Zaichik.Server.Diagnostics;

/// <summary>Server-wide counts of what the sessions refused; rare paths, so one shared counter per error code.</summary>
internal sealed class ServerCounters
{
    private readonly long[] _refused = new long[256];

    /// <summary>A publish answered with an Error frame of <paramref name="code"/>.</summary>
    public void PublishRefused(ErrorCode code) => Interlocked.Increment(ref _refused[(byte)code]);

    /// <summary>Refused publishes by error code (codes never used left out).</summary>
    public IEnumerable<(ErrorCode Code, long Count)> Refused()
    {
        for (var code = 0; code < _refused.Length; code++)
        {
            var count = Volatile.Read(ref _refused[code]);
            if (count > 0)
            {
                yield return ((ErrorCode)code, count);
            }
        }
    }
}
