using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Zaichik.Server.Hosting;

namespace Zaichik.Server.Sessions.Internal;

/// <summary>
/// One timer for every connection, instead of a timer per connection reset on every read: each tick asks every
/// session whether it has been silent past its idle (or handshake) timeout. Sessions only stamp the time of their
/// last read, so the read path pays one clock read per socket read and nothing per frame.
/// </summary>
internal sealed class IdleConnectionMonitor : IDisposable
{
    private readonly ConcurrentDictionary<ClientSession, byte> _sessions = new();
    private readonly TimeProvider _time;
    private readonly ITimer? _timer;

    public IdleConnectionMonitor(IOptions<ZaichikServerOptions> options, TimeProvider time)
    {
        _time = time;
        var shortest = new[] { options.Value.IdleTimeout, options.Value.HandshakeTimeout }
            .Where(timeout => timeout > TimeSpan.Zero)
            .DefaultIfEmpty(TimeSpan.Zero)
            .Min();
        if (shortest > TimeSpan.Zero)
        {
            // A quarter of the timeout keeps the overshoot under 25 %; more often than every 10 ms buys nothing.
            var period = TimeSpan.FromTicks(Math.Clamp(shortest.Ticks / 4, TimeSpan.FromMilliseconds(10).Ticks, TimeSpan.FromSeconds(1).Ticks));
            _timer = time.CreateTimer(static state => ((IdleConnectionMonitor)state!).CheckAll(), this, period, period);
        }
    }

    /// <summary>The sessions now (a live view; enumerating it is safe while sessions come and go).</summary>
    public IEnumerable<ClientSession> Sessions => _sessions.Keys;

    public void Add(ClientSession session) => _sessions.TryAdd(session, 0);

    public void Remove(ClientSession session) => _sessions.TryRemove(session, out _);

    public void Dispose() => _timer?.Dispose();

    private void CheckAll()
    {
        var now = _time.GetTimestamp();
        foreach (var session in _sessions.Keys)
        {
            session.CheckIdle(now);
        }
    }
}
