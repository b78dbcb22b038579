namespace Zaichik.Server.Storage.Internal;

/// <summary>
/// Keeps a topic from ever giving one sequence to two messages. A sequence is handed out only below a bound that is
/// already durable: on a disk topic it travels in the commit record (<see cref="CommitCookie.ReservedUntil"/>), on a
/// Memory topic in a small file of its own. The bound is raised a block at a time, in the background once half a
/// block is used, so a publish rarely waits for it. After a crash the log resumes at the recorded bound, past every
/// sequence that may have been acknowledged and lost with the process, and reports the unused rest as a hole. A topic
/// that uses a block up within a second gets twice as much the next time, up to <see cref="MaximumBlock"/>.
/// </summary>
internal sealed class SequenceReservation
{
    public const long MinimumBlock = 1024;

    public const long MaximumBlock = 1 << 20;

    private readonly Func<long, Task> _persist;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private long _until;
    private long _requested;
    private long _block = 4 * MinimumBlock;
    private long _raisedAt;
    private Task? _raising;
    private bool _implicit;

    /// <param name="durableUntil">The bound already durable (sequences below it may be handed out).</param>
    /// <param name="persist">Makes a new bound durable; completes once it is.</param>
    /// <param name="brandNew">
    /// The log has never been committed and holds nothing. Until its first commit, recovery would find no commit record
    /// and skip a whole <see cref="MaximumBlock"/>, so sequences below that need no commit of their own: the first
    /// publish to a new topic does not wait for the disk. The first commit then records an ordinary bound
    /// (<see cref="ForCommit"/>) and the reservation goes on from there.
    /// </param>
    public SequenceReservation(long durableUntil, Func<long, Task> persist, TimeProvider time, bool brandNew = false)
    {
        _implicit = brandNew;
        _until = brandNew ? durableUntil + MaximumBlock : durableUntil;
        _requested = durableUntil;
        _persist = persist;
        _time = time;
    }

    /// <summary>
    /// The bound a commit about to be issued records. The first commit of a brand-new log ends its implicit bound: what
    /// it records covers every sequence handed out so far and a block more, and from then on that is the limit.
    /// </summary>
    public long ForCommit(long next)
    {
        lock (_lock)
        {
            if (_implicit)
            {
                _implicit = false;
                var bound = Math.Max(Volatile.Read(ref _requested), next + _block);
                Volatile.Write(ref _requested, bound);
                Volatile.Write(ref _until, bound);
                return bound;
            }

            return Volatile.Read(ref _requested);
        }
    }

    /// <summary>Sequences below this may be handed out.</summary>
    public long Until => Volatile.Read(ref _until);

    /// <summary>The highest bound asked for, durable or not yet: what a commit record should carry.</summary>
    public long Requested => Volatile.Read(ref _requested);

    /// <summary>
    /// True when <paramref name="sequence"/> may be handed out now. Starts raising the bound in the background once
    /// half the block is used; false only when the bound is reached and <see cref="WaitAsync"/> must be awaited.
    /// </summary>
    public bool Covers(long sequence)
    {
        var until = Volatile.Read(ref _until);
        if (sequence + (_block / 2) < until)
        {
            return true;
        }

        _ = Raise(sequence);
        return sequence < until;
    }

    /// <summary>Completes once <paramref name="sequence"/> may be handed out; throws when the bound cannot be made durable.</summary>
    public async ValueTask WaitAsync(long sequence)
    {
        while (sequence >= Volatile.Read(ref _until))
        {
            await Raise(sequence).ConfigureAwait(false);
        }
    }

    /// <summary>The raise in progress, or a new one from <paramref name="sequence"/>.</summary>
    private Task Raise(long sequence)
    {
        lock (_lock)
        {
            return _raising ??= RaiseAsync(sequence);
        }
    }

    private async Task RaiseAsync(long sequence)
    {
        await Task.Yield();
        try
        {
            var now = _time.GetTimestamp();
            if (_raisedAt != 0)
            {
                var lasted = _time.GetElapsedTime(_raisedAt, now);
                _block = lasted < TimeSpan.FromSeconds(1) ? Math.Min(_block * 2, MaximumBlock)
                    : lasted > TimeSpan.FromMinutes(1) ? Math.Max(_block / 2, MinimumBlock)
                    : _block;
            }

            var until = Math.Max(sequence, Volatile.Read(ref _until)) + _block;
            Volatile.Write(ref _requested, Math.Max(Volatile.Read(ref _requested), until));
            await _persist(until).ConfigureAwait(false);
            _raisedAt = _time.GetTimestamp();
            Volatile.Write(ref _until, Math.Max(Volatile.Read(ref _until), until));
        }
        finally
        {
            lock (_lock)
            {
                _raising = null;
            }
        }
    }
}
