using System.Buffers;

namespace Zaichik.Server.Storage.Internal;

/// <summary>
/// Reassembles a message that was stored as several log entries: its key, then its content (the header block followed
/// by the payload). The buffer is rented when the First fragment arrives and returned as soon as the message is
/// delivered or abandoned, so it costs nothing between large messages.
/// </summary>
internal sealed class FragmentAssembler : IDisposable
{
    private byte[]? _buffer;
    private int _keyLength;
    private int _headersLength;
    private int _contentLength;
    private int _received;

    public bool InProgress => _buffer is not null;

    public long Sequence { get; private set; }

    /// <summary>The address of the First fragment.</summary>
    public long Address { get; private set; }

    public long TimestampMs { get; private set; }

    public bool HasKey { get; private set; }

    public ProducerStamp Producer { get; private set; }

    public ReadOnlySpan<byte> Key => _buffer.AsSpan(0, _keyLength);

    public ReadOnlySpan<byte> Headers => _buffer.AsSpan(_keyLength, _headersLength);

    public ReadOnlySpan<byte> Payload => _buffer.AsSpan(_keyLength + _headersLength, _contentLength - _headersLength);

    public void Begin(
        long sequence, long address, long timestampMs, bool hasKey, ReadOnlySpan<byte> key, ProducerStamp producer, int headersLength, int payloadLength, ReadOnlySpan<byte> firstPart)
    {
        Reset();
        _buffer = ArrayPool<byte>.Shared.Rent(key.Length + headersLength + payloadLength);
        Sequence = sequence;
        Address = address;
        TimestampMs = timestampMs;
        HasKey = hasKey;
        Producer = producer;
        _keyLength = key.Length;
        _headersLength = headersLength;
        _contentLength = headersLength + payloadLength;
        key.CopyTo(_buffer);
        _received = 0;
        Append(firstPart);
    }

    /// <summary>Adds the next part; true once the whole content is there. False (and abandons) if parts overflow it.</summary>
    public bool Append(ReadOnlySpan<byte> part)
    {
        if (_buffer is null || part.Length > _contentLength - _received)
        {
            Reset();
            return false;
        }

        part.CopyTo(_buffer.AsSpan(_keyLength + _received));
        _received += part.Length;
        return _received == _contentLength;
    }

    public bool Complete => _buffer is not null && _received == _contentLength;

    public void Reset()
    {
        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }
    }

    public void Dispose() => Reset();
}
