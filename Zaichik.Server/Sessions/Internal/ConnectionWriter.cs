using System.IO.Pipelines;

namespace Zaichik.Server.Sessions.Internal;

/// <summary>
/// The single way onto a connection's output. Writers take the gate, copy already-encoded frames in, flush, and
/// release; nothing else is awaited under the gate, and no incoming frame is handled while it is held, so a
/// connection that publishes to a topic it subscribes to cannot deadlock itself.
/// </summary>
internal sealed class ConnectionWriter(PipeWriter output)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private volatile bool _closed;
    private long _bytesWritten;

    /// <summary>Bytes handed to the connection so far.</summary>
    public long BytesWritten => Volatile.Read(ref _bytesWritten);

    /// <summary>True once a flush found the peer gone; nothing more will be written.</summary>
    public bool IsClosed => _closed;

    /// <summary>
    /// Writes <paramref name="frames"/> (whole encoded frames) and flushes. Returns false when the peer is gone. With
    /// <paramref name="last"/>, nothing is written after these frames: the closing Error of a connection stays its last
    /// frame even while subscription pumps still try to deliver.
    /// </summary>
    public async ValueTask<bool> WriteAsync(ReadOnlyMemory<byte> frames, CancellationToken cancellationToken, bool last = false)
    {
        if (_closed)
        {
            return false;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        return await WriteEnteredAsync(frames, cancellationToken, last).ConfigureAwait(false);
    }

    /// <summary>
    /// Takes the gate if it is free now; false when another write holds it or the peer is gone. After true, call
    /// <see cref="WriteEnteredAsync"/> at once: it writes and gives the gate back.
    /// </summary>
    public bool TryEnter() => !_closed && _gate.Wait(0);

    /// <summary>
    /// <see cref="WriteAsync"/> with the gate already taken (<see cref="TryEnter"/>). The frames are copied into the
    /// connection's output before this returns, even when the flush goes on afterwards.
    /// </summary>
    public async ValueTask<bool> WriteEnteredAsync(ReadOnlyMemory<byte> frames, CancellationToken cancellationToken, bool last = false)
    {
        try
        {
            if (_closed)
            {
                return false;
            }

            Volatile.Write(ref _bytesWritten, _bytesWritten + frames.Length);
            var result = await output.WriteAsync(frames, cancellationToken).ConfigureAwait(false);
            if (result.IsCompleted || result.IsCanceled || last)
            {
                _closed = true;
            }
        }
        catch (Exception exception) when (exception is IOException or InvalidOperationException or ObjectDisposedException)
        {
            _closed = true;
        }
        finally
        {
            _gate.Release();
        }

        return !_closed;
    }
}
