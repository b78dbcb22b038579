using System.Net;
using System.Net.Sockets;

namespace Zaichik.Tests.Client;

/// <summary>
/// A TCP proxy on 127.0.0.1:0 in front of a broker that a test can make lose things: swallow the broker's replies
/// (so requests are handled but their answers never arrive), and cut every connection.
/// </summary>
internal sealed class LossyProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<(TcpClient Client, TcpClient Server)> _pairs = [];
    private readonly Lock _lock = new();
    private readonly Task _accepting;
    private volatile bool _swallowReplies;

    public LossyProxy(int targetPort)
    {
        _target = targetPort;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public int Connections { get; private set; }

    /// <summary>From now on the broker's bytes are read and dropped, until <see cref="CutAll"/>.</summary>
    public void SwallowReplies() => _swallowReplies = true;

    /// <summary>Closes every connection (both sides) and forwards replies again on new ones.</summary>
    public void CutAll()
    {
        lock (_lock)
        {
            foreach (var (client, server) in _pairs)
            {
                try
                {
                    // A reset, not a polite close: the client must see the connection fail.
                    client.Client.LingerState = new LingerOption(true, 0);
                }
                catch (ObjectDisposedException)
                {
                    // Its pump closed it already.
                }

                client.Dispose();
                server.Dispose();
            }

            _pairs.Clear();
            _swallowReplies = false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        CutAll();
        await _accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            var server = new TcpClient { NoDelay = true };
            try
            {
                await server.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
            }
            catch (SocketException)
            {
                client.Dispose();
                server.Dispose();
                continue;
            }

            lock (_lock)
            {
                _pairs.Add((client, server));
                Connections++;
            }

            _ = PumpAsync(client.GetStream(), server.GetStream(), replies: false);
            _ = PumpAsync(server.GetStream(), client.GetStream(), replies: true);
        }
    }

    private async Task PumpAsync(Stream from, Stream to, bool replies)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReadAsync(buffer, _stop.Token);
                if (read == 0)
                {
                    break;
                }

                if (!(replies && _swallowReplies))
                {
                    await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
                }
            }
        }
        catch (Exception)
        {
            // A cut connection ends both pumps.
        }

        from.Dispose();
        to.Dispose();
    }
}
