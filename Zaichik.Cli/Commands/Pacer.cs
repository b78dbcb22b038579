namespace Zaichik.Cli.Commands;

/// <summary>
/// Spaces out sends to at most <c>rate</c> per second on a <see cref="TimeProvider"/>: the n-th send is due at
/// start + n / rate, and waiting for it is a timer, not a spin. Without a rate every send is due at once.
/// </summary>
internal sealed class Pacer(TimeProvider time, double? rate)
{
    private readonly long _start = time.GetTimestamp();

    public async ValueTask WaitForTurnAsync(long index, CancellationToken cancellationToken)
    {
        if (rate is not { } perSecond)
        {
            return;
        }

        var due = TimeSpan.FromSeconds(index / perSecond);
        var wait = due - time.GetElapsedTime(_start);
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, time, cancellationToken);
        }
    }
}
