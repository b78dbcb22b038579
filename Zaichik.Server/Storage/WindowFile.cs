using System.Buffers;
using System.Buffers.Binary;

namespace Zaichik.Server.Storage;

/// <summary>
/// One message as a <see cref="WindowFile"/> holds it: its sequence and timestamp, its key when the key window needs it,
/// and its idempotent producer's stamp when the producers' window does (<see cref="ProducerStamp.None"/> otherwise).
/// </summary>
internal readonly ref struct WindowRecord(long sequence, long timestampMs, bool hasKey, ReadOnlySpan<byte> key, ProducerStamp producer)
{
    public long Sequence { get; } = sequence;

    public long TimestampMs { get; } = timestampMs;

    public bool HasKey { get; } = hasKey;

    public ReadOnlySpan<byte> Key { get; } = key;

    public ProducerStamp Producer { get; } = producer;
}

/// <summary>Called for each record read from a <see cref="WindowFile"/>, in order.</summary>
internal delegate void WindowRecordAction(in WindowRecord record);

/// <summary>
/// Records to append to a <see cref="WindowFile"/> as one block, encoded as they are added into a pooled buffer (no copy
/// of a key is kept, and a block of any size allocates nothing once the pool has a buffer that large). Consecutive
/// publishes of one producer (its numbers one apart, sequences and timestamps not going back) are written as one run:
/// the first publish whole, then two varints per publish, so a busy producer costs a few bytes per message.
/// </summary>
internal sealed class WindowBlock : IDisposable
{
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(4096);
    private int _written = WindowFile.BlockHeaderSize;

    // The run being written: where its count goes, and the publish it ends with.
    private int _runCountAt = -1;
    private uint _runCount;
    private ProducerStamp _runLast;
    private long _runLastSequence;
    private long _runLastTimestampMs;

    /// <summary>Records added (a run counts each publish in it).</summary>
    public int Count { get; private set; }

    /// <summary>Set by whoever fills the block from a file when it left a record, or part of one, out.</summary>
    public bool Trimmed { get; set; }

    /// <summary>Adds a record; one with neither a key nor a producer is left out.</summary>
    public void Add(long sequence, long timestampMs, bool hasKey, ReadOnlySpan<byte> key, ProducerStamp producer)
    {
        if (!hasKey && !producer.IsSet)
        {
            return;
        }

        if (!hasKey)
        {
            AddProducer(sequence, timestampMs, producer);
            return;
        }

        EndRun();
        var size = 17 + 2 + key.Length + (producer.IsSet ? 16 : 0);
        var span = Reserve(size);
        span[0] = (byte)(WindowFile.KeyFlag | (producer.IsSet ? WindowFile.ProducerFlag : 0));
        BinaryPrimitives.WriteInt64LittleEndian(span[1..], sequence);
        BinaryPrimitives.WriteInt64LittleEndian(span[9..], timestampMs);
        BinaryPrimitives.WriteUInt16LittleEndian(span[17..], checked((ushort)key.Length));
        key.CopyTo(span[19..]);
        if (producer.IsSet)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(span[(19 + key.Length)..], producer.ProducerId);
            BinaryPrimitives.WriteUInt64LittleEndian(span[(27 + key.Length)..], producer.Sequence);
        }

        _written += size;
        Count++;
    }

    private void AddProducer(long sequence, long timestampMs, ProducerStamp producer)
    {
        if (_runCountAt >= 0 && producer.ProducerId == _runLast.ProducerId && producer.Sequence == _runLast.Sequence + 1
            && sequence > _runLastSequence && timestampMs >= _runLastTimestampMs && _runCount < uint.MaxValue)
        {
            var span = Reserve(2 * 10);
            var length = WriteVarint(span, (ulong)(sequence - _runLastSequence));
            length += WriteVarint(span[length..], (ulong)(timestampMs - _runLastTimestampMs));
            _written += length;
        }
        else
        {
            EndRun();

            // [flags: run][sequence][timestamp][producer id][producer sequence][count u32]
            var span = Reserve(17 + 16 + 4);
            span[0] = WindowFile.RunFlag;
            BinaryPrimitives.WriteInt64LittleEndian(span[1..], sequence);
            BinaryPrimitives.WriteInt64LittleEndian(span[9..], timestampMs);
            BinaryPrimitives.WriteUInt64LittleEndian(span[17..], producer.ProducerId);
            BinaryPrimitives.WriteUInt64LittleEndian(span[25..], producer.Sequence);
            _runCountAt = _written + 33;
            _runCount = 0;
            _written += 37;
        }

        _runCount++;
        (_runLast, _runLastSequence, _runLastTimestampMs) = (producer, sequence, timestampMs);
        Count++;
    }

    private void EndRun()
    {
        if (_runCountAt >= 0)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(_buffer.AsSpan(_runCountAt), _runCount);
            _runCountAt = -1;
        }
    }

    private Span<byte> Reserve(int size)
    {
        if (_written + size > _buffer.Length)
        {
            var larger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _written + size));
            _buffer.AsSpan(0, _written).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
        }

        return _buffer.AsSpan(_written, size);
    }

    private static int WriteVarint(Span<byte> destination, ulong value)
    {
        var length = 0;
        while (value >= 0x80)
        {
            destination[length++] = (byte)(value | 0x80);
            value >>= 7;
        }

        destination[length++] = (byte)value;
        return length;
    }

    /// <summary>The block, header and checksum written.</summary>
    /// <exception cref="IOException">The block is larger than a block may be.</exception>
    internal ReadOnlySpan<byte> Seal()
    {
        EndRun();
        var payloadLength = _written - WindowFile.BlockHeaderSize;
        if (payloadLength > WindowFile.MaxBlockBytes)
        {
            // One block per append; an append this large would be one sweep removing a quarter of a GiB of keys.
            throw new IOException($"{Count} window records take {payloadLength} bytes, more than one block holds ({WindowFile.MaxBlockBytes})");
        }

        var block = _buffer.AsSpan(0, _written);
        WindowFile.Magic.CopyTo(block);
        BinaryPrimitives.WriteUInt32LittleEndian(block[4..], (uint)payloadLength);
        BinaryPrimitives.WriteUInt32LittleEndian(block[8..], LogRecord.Checksum(block[WindowFile.BlockHeaderSize..]));
        return block;
    }

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, []);
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

/// <summary>Bytes of a <see cref="WindowFile"/> that could not be read: a torn append or damage.</summary>
internal readonly record struct WindowFileDamage(long Offset, long Bytes);

/// <summary>
/// What a topic's dedup windows (its key window and its idempotent producers' window) must remember of messages its log
/// no longer holds. The windows are rebuilt from the log when a topic opens, so a message removed while its window still
/// runs (by <c>MaxMessages</c>, <c>MaxBytes</c>, a retention shorter than the window, or a topic without retention that
/// nobody reads, a compaction pass) would be forgotten at a restart, and a cluster node starting from a snapshot would disagree with the
/// others about it. Before such a removal the topic appends those messages' entries here; at open it loads them, then
/// the log. The file is <c>windows</c> beside the log, a sequence of blocks
/// <c>"ZKW1"[payload length u32][crc32c u32][entry]*</c>, each entry
/// <c>[flags u8: 1 key, 2 producer][sequence i64][timestamp i64]([key length u16][key])?([producer id u64][producer sequence u64])?</c>,
/// or a run of one producer's publishes <c>[4][sequence i64][timestamp i64][producer id u64][producer sequence u64][count u32]</c>
/// followed by <c>count - 1</c> pairs of varints (sequence and timestamp steps; the producer's number steps by one).
/// Every append is one block, written and fsynced before the log is truncated. A damaged block costs its own entries:
/// the reader finds the next block that verifies. The file is rewritten with only what is still inside a window when it
/// has doubled since it was last written whole. Not thread-safe: the topic serialises its use (a sweep's append holds the
/// topic's window lock; a compaction pass's append, for a topic that keeps the latest value per key, runs inside the
/// log's pass, which a copy of the topic's files and the log's close wait for).
/// </summary>
internal sealed class WindowFile
{
    public const string FileName = "windows";

    internal const int BlockHeaderSize = 12;
    internal const int MaxBlockBytes = 256 << 20;
    internal const byte KeyFlag = 1;
    internal const byte ProducerFlag = 2;
    internal const byte RunFlag = 4;

    internal const int MinimumRewriteBytes = 1 << 20;

    private readonly string _directory;
    private long _length;
    private long _lengthWhenWhole;

    private WindowFile(string directory, long length)
    {
        _directory = directory;
        _length = length;
        _lengthWhenWhole = length;
    }

    internal static ReadOnlySpan<byte> Magic => "ZKW1"u8;

    public string Path => System.IO.Path.Combine(_directory, FileName);

    /// <summary>The file's length in bytes (0 when it does not exist).</summary>
    public long Length => _length;

    /// <summary>True when the file has doubled (and passed 1 MiB) since it was last written whole: time to <see cref="Rewrite"/> it.</summary>
    public bool WantsRewrite => _length > Math.Max(MinimumRewriteBytes, 2 * _lengthWhenWhole);

    /// <summary>
    /// Opens the file of the topic in <paramref name="directory"/> and gives every record of every block that verifies,
    /// in order; <paramref name="damage"/> lists the byte ranges that did not.
    /// </summary>
    /// <exception cref="IOException">The file exists but cannot be read.</exception>
    /// <exception cref="InvalidDataException">Something other than a file has its name.</exception>
    public static WindowFile Open(string directory, WindowRecordAction onRecord, out List<WindowFileDamage> damage)
    {
        damage = [];
        var path = System.IO.Path.Combine(directory, FileName);
        var kind = Internal.FileKinds.Of(path);
        if (kind == Internal.FileKind.Missing)
        {
            return new WindowFile(directory, 0);
        }

        if (kind != Internal.FileKind.File)
        {
            throw new InvalidDataException($"'{path}' is a {kind}, not a file");
        }

        var bytes = File.ReadAllBytes(path);
        Parse(bytes, onRecord, damage);

        // A torn last block (a crash during an append) is cut off by the next append.
        var length = damage.Count > 0 && damage[^1].Offset + damage[^1].Bytes == bytes.Length ? damage[^1].Offset : bytes.Length;
        return new WindowFile(directory, length);
    }

    /// <summary>Appends <paramref name="block"/> and flushes it to disk; nothing when it is empty.</summary>
    /// <exception cref="IOException">The block could not be written; the next append starts where this one did.</exception>
    public void Append(WindowBlock block)
    {
        if (block.Count == 0)
        {
            return;
        }

        var bytes = block.Seal();
        using (var file = new FileStream(Path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read))
        {
            // Whatever lies past the last whole block (a torn or failed append) is cut off.
            file.SetLength(_length);
            file.Seek(_length, SeekOrigin.Begin);
            file.Write(bytes);
            file.Flush(flushToDisk: true);
        }

        if (_length == 0)
        {
            Internal.DirectorySync.Flush(_directory);
        }

        _length += bytes.Length;
    }

    /// <summary>
    /// Replaces the file with <paramref name="block"/> (written aside, fsynced and renamed), or deletes it when the block
    /// is empty.
    /// </summary>
    public void Replace(WindowBlock block)
    {
        if (block.Count == 0)
        {
            if (File.Exists(Path))
            {
                File.Delete(Path);
                Internal.DirectorySync.Flush(_directory);
            }

            _length = _lengthWhenWhole = 0;
            return;
        }

        var bytes = block.Seal();
        Internal.FileReplacement.Replace(Path, bytes);
        _length = _lengthWhenWhole = bytes.Length;
    }

    /// <summary>
    /// Rewrites the file with what <paramref name="keep"/> adds to the block it is given for each record read (damaged
    /// blocks are left out).
    /// </summary>
    public void Rewrite(Action<WindowBlock, WindowRecord> keep)
    {
        using var block = new WindowBlock();
        if (_length > 0)
        {
            // Read into a pooled buffer: a rewrite comes back every time the file doubles, and should not cost a large object each time.
            var bytes = ArrayPool<byte>.Shared.Rent(checked((int)_length));
            try
            {
                using (var handle = File.OpenHandle(Path))
                {
                    var read = 0;
                    while (read < _length && RandomAccess.Read(handle, bytes.AsSpan(read, (int)_length - read), read) is var count and > 0)
                    {
                        read += count;
                    }

                    Parse(bytes.AsSpan(0, read), (in WindowRecord record) => keep(block, record), []);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(bytes);
            }
        }

        Replace(block);
    }

    private static void Parse(ReadOnlySpan<byte> bytes, WindowRecordAction onRecord, List<WindowFileDamage> damage)
    {
        var at = 0;
        var damagedFrom = -1;
        while (at < bytes.Length)
        {
            if (TryParseBlock(bytes[at..], onRecord, out var blockLength))
            {
                if (damagedFrom >= 0)
                {
                    damage.Add(new WindowFileDamage(damagedFrom, at - damagedFrom));
                    damagedFrom = -1;
                }

                at += blockLength;
                continue;
            }

            if (damagedFrom < 0)
            {
                damagedFrom = at;
            }

            // Resynchronise on the next block start that verifies.
            var next = bytes[(at + 1)..].IndexOf(Magic);
            at = next < 0 ? bytes.Length : at + 1 + next;
        }

        if (damagedFrom >= 0)
        {
            damage.Add(new WindowFileDamage(damagedFrom, bytes.Length - damagedFrom));
        }
    }

    /// <summary>Gives the block's records once all of them are known to be well formed; false (and none given) otherwise.</summary>
    private static bool TryParseBlock(ReadOnlySpan<byte> bytes, WindowRecordAction onRecord, out int blockLength)
    {
        blockLength = 0;
        if (bytes.Length < BlockHeaderSize || !bytes[..4].SequenceEqual(Magic))
        {
            return false;
        }

        var payloadLength = BinaryPrimitives.ReadUInt32LittleEndian(bytes[4..]);
        if (payloadLength > MaxBlockBytes || payloadLength > bytes.Length - BlockHeaderSize)
        {
            return false;
        }

        var payload = bytes.Slice(BlockHeaderSize, (int)payloadLength);
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]) != LogRecord.Checksum(payload) || !Walk(payload, null))
        {
            return false;
        }

        Walk(payload, onRecord);
        blockLength = BlockHeaderSize + (int)payloadLength;
        return true;
    }

    /// <summary>Walks a block's records, giving each to <paramref name="onRecord"/> when there is one; false when one is malformed.</summary>
    private static bool Walk(ReadOnlySpan<byte> payload, WindowRecordAction? onRecord)
    {
        while (payload.Length > 0)
        {
            if (payload.Length < 17 || (payload[0] != RunFlag && (payload[0] & ~(KeyFlag | ProducerFlag)) != 0))
            {
                return false;
            }

            var flags = payload[0];
            var sequence = BinaryPrimitives.ReadInt64LittleEndian(payload[1..]);
            var timestampMs = BinaryPrimitives.ReadInt64LittleEndian(payload[9..]);
            payload = payload[17..];
            if (flags == RunFlag)
            {
                if (!WalkRun(ref payload, sequence, timestampMs, onRecord))
                {
                    return false;
                }

                continue;
            }

            var hasKey = (flags & KeyFlag) != 0;
            ReadOnlySpan<byte> key = default;
            if (hasKey)
            {
                if (payload.Length < 2 || payload.Length < 2 + BinaryPrimitives.ReadUInt16LittleEndian(payload))
                {
                    return false;
                }

                key = payload.Slice(2, BinaryPrimitives.ReadUInt16LittleEndian(payload));
                payload = payload[(2 + key.Length)..];
            }

            var producer = ProducerStamp.None;
            if ((flags & ProducerFlag) != 0)
            {
                if (payload.Length < 16)
                {
                    return false;
                }

                producer = new ProducerStamp(BinaryPrimitives.ReadUInt64LittleEndian(payload), BinaryPrimitives.ReadUInt64LittleEndian(payload[8..]));
                payload = payload[16..];
            }

            onRecord?.Invoke(new WindowRecord(sequence, timestampMs, hasKey, key, producer));
        }

        return true;
    }

    private static bool WalkRun(ref ReadOnlySpan<byte> payload, long sequence, long timestampMs, WindowRecordAction? onRecord)
    {
        if (payload.Length < 20)
        {
            return false;
        }

        var producerId = BinaryPrimitives.ReadUInt64LittleEndian(payload);
        var producerSequence = BinaryPrimitives.ReadUInt64LittleEndian(payload[8..]);
        var count = BinaryPrimitives.ReadUInt32LittleEndian(payload[16..]);
        payload = payload[20..];
        if (count == 0)
        {
            return false;
        }

        for (var i = 0u; i < count; i++)
        {
            if (i > 0)
            {
                if (!TryReadVarint(ref payload, out var sequenceStep) || !TryReadVarint(ref payload, out var timeStep)
                    || sequenceStep == 0 || sequenceStep > long.MaxValue || timeStep > long.MaxValue)
                {
                    return false;
                }

                sequence += (long)sequenceStep;
                timestampMs += (long)timeStep;
                producerSequence++;
            }

            onRecord?.Invoke(new WindowRecord(sequence, timestampMs, hasKey: false, default, new ProducerStamp(producerId, producerSequence)));
        }

        return true;
    }

    private static bool TryReadVarint(ref ReadOnlySpan<byte> payload, out ulong value)
    {
        value = 0;
        for (var shift = 0; shift < 64 && payload.Length > 0; shift += 7)
        {
            var b = payload[0];
            payload = payload[1..];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return true;
            }
        }

        return false;
    }
}
