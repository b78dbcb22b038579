using System.Buffers;

namespace Zaichik.Server.Sessions.Internal;

/// <summary>
/// A growable staging buffer for encoded frames, rented from the shared pool and handed back by
/// <see cref="Reset"/>, so idle connections and subscriptions hold no buffer at all.
/// </summary>
internal sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    private const int MinimumSize = 4096;
    private byte[]? _buffer;
    private int _written;

    public int WrittenCount => _written;

    public ReadOnlyMemory<byte> WrittenMemory => _buffer is null ? ReadOnlyMemory<byte>.Empty : _buffer.AsMemory(0, _written);

    public void Advance(int count) => _written += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    /// <summary>Forgets what was written and returns the buffer to the pool.</summary>
    public void Reset()
    {
        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }

        _written = 0;
    }

    public void Dispose() => Reset();

    private void Ensure(int sizeHint)
    {
        var needed = _written + Math.Max(sizeHint, 1);
        if (_buffer is not null && needed <= _buffer.Length)
        {
            return;
        }

        var next = ArrayPool<byte>.Shared.Rent(Math.Max(needed, Math.Max(MinimumSize, (_buffer?.Length ?? 0) * 2)));
        if (_buffer is not null)
        {
            _buffer.AsSpan(0, _written).CopyTo(next);
            ArrayPool<byte>.Shared.Return(_buffer);
        }

        _buffer = next;
    }
}
