using System.Globalization;
using System.Text.RegularExpressions;

namespace Zaichik.Tests.Crash;

/// <summary>
/// A payload the crash test writes: <c>g{generation}-p{publisher}-{sequence:D8}</c> from a publisher, or
/// <c>sentinel-{generation}</c>, published after the restart that ends a generation to mark the end of the log.
/// A generation is the life of one server process between two kills.
/// </summary>
internal readonly partial record struct CrashPayload(int Generation, int Publisher, int Sequence, bool IsSentinel)
{
    public static string Message(int generation, int publisher, int sequence) =>
        string.Create(CultureInfo.InvariantCulture, $"g{generation}-p{publisher}-{sequence:D8}");

    public static string Sentinel(int generation) =>
        string.Create(CultureInfo.InvariantCulture, $"sentinel-{generation}");

    /// <summary>
    /// Where the payload must sit in the log relative to the others: a generation's messages, then its sentinel,
    /// then the next generation's messages, and so on.
    /// </summary>
    public int Phase => (2 * Generation) + (IsSentinel ? 1 : 0);

    public static bool TryParse(string text, out CrashPayload payload)
    {
        if (MessagePattern().Match(text) is { Success: true } message)
        {
            payload = new CrashPayload(Number(message, 1), Number(message, 2), Number(message, 3), IsSentinel: false);
            return true;
        }

        if (SentinelPattern().Match(text) is { Success: true } sentinel)
        {
            payload = new CrashPayload(Number(sentinel, 1), Publisher: -1, Sequence: -1, IsSentinel: true);
            return true;
        }

        payload = default;
        return false;
    }

    public override string ToString() => IsSentinel ? Sentinel(Generation) : Message(Generation, Publisher, Sequence);

    private static int Number(Match match, int group) => int.Parse(match.Groups[group].ValueSpan, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^g([0-9]{1,3})-p([0-9]{1,3})-([0-9]{8})$", RegexOptions.CultureInvariant)]
    private static partial Regex MessagePattern();

    [GeneratedRegex(@"^sentinel-([0-9]{1,3})$", RegexOptions.CultureInvariant)]
    private static partial Regex SentinelPattern();
}
