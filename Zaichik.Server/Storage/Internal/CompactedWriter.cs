namespace Zaichik.Server.Storage.Internal;

/// <summary>
/// Writes the next generation of a topic's <see cref="CompactedLog"/>: messages in sequence order into pages laid out
/// as log pages, aside in <see cref="CompactedLog.TemporaryName"/>; <see cref="Complete"/> writes the header, fsyncs,
/// renames the file into place and fsyncs the folder. Disposed before completing, it deletes what it wrote.
/// </summary>
internal sealed class CompactedWriter : IDisposable
{
    private readonly string _directory;
    private readonly string _temporary;
    private readonly int _pageSizeBits;
    private readonly int _maxRecordSize;
    private readonly byte[] _page;
    private readonly FileStream _file;
    private long _pageStart;
    private int _offset = CompactedLog.DataStart;
    private bool _completed;

    public CompactedWriter(string directory, int pageSizeBits, int maxRecordSize)
    {
        _directory = directory;
        _temporary = Path.Combine(directory, CompactedLog.TemporaryName);
        _pageSizeBits = pageSizeBits;
        _maxRecordSize = maxRecordSize;
        _page = new byte[1 << pageSizeBits];
        _file = new FileStream(_temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << pageSizeBits);
    }

    public long FirstSequence { get; private set; }

    public long LastSequence { get; private set; }

    public long Count { get; private set; }

    public long LastTimestampMs { get; private set; }

    /// <summary>Appends one message, as one entry or, larger than a page takes, as fragments.</summary>
    public void Add(LogMessage message)
    {
        var key = message.HasKey ? message.Key : default;
        var headers = message.Headers;
        var payload = message.Payload;
        var size = LogRecord.SizeOf(key.Length, headers.Length, payload.Length, message.Producer);
        if (size <= _maxRecordSize)
        {
            LogRecord.WriteWhole(Reserve(size), message.Sequence, message.TimestampMs, message.HasKey, key, headers, message.Producer, payload);
        }
        else
        {
            // As the log splits it (TopicLog.AppendAsync): the headers then the payload, a page's worth per entry.
            var content = headers.Length + payload.Length;
            var firstPart = _maxRecordSize - LogRecord.HeaderSizeOf(headers.Length, message.Producer) - key.Length - LogRecord.FirstFragmentExtra;
            Slice(headers, payload, 0, firstPart, out var headersPart, out var payloadPart);
            var firstSize = LogRecord.HeaderSizeOf(headers.Length, message.Producer) + key.Length + LogRecord.FirstFragmentExtra + headersPart.Length + payloadPart.Length;
            LogRecord.WriteFirst(Reserve(firstSize), message.Sequence, message.TimestampMs, message.HasKey, key, headers.Length, message.Producer, payload.Length, headersPart, payloadPart);
            var continuationPart = _maxRecordSize - LogRecord.HeaderSize;
            for (var position = firstPart; position < content; position += continuationPart)
            {
                Slice(headers, payload, position, Math.Min(continuationPart, content - position), out headersPart, out payloadPart);
                LogRecord.WriteContinuation(Reserve(LogRecord.HeaderSize + headersPart.Length + payloadPart.Length), message.Sequence, message.TimestampMs, headersPart, payloadPart);
            }
        }

        FirstSequence = Count == 0 ? message.Sequence : FirstSequence;
        LastSequence = message.Sequence;
        LastTimestampMs = message.TimestampMs;
        Count++;
    }

    /// <summary>
    /// Finishes the file as generation <paramref name="generation"/> of a log cut at <paramref name="cutAddress"/>, whose
    /// first message after the cut is <paramref name="nextSequence"/>, and puts it in place, durably.
    /// </summary>
    /// <exception cref="IOException">It could not be written, flushed or renamed; nothing replaced the current file.</exception>
    public CompactedLog Complete(long generation, long cutAddress, long nextSequence)
    {
        var dataEnd = _pageStart + _offset;
        if (_offset > 0)
        {
            _file.Write(_page, 0, _offset);
        }

        var first = Count == 0 ? nextSequence : FirstSequence;
        var last = Count == 0 ? nextSequence - 1 : LastSequence;
        _file.Position = 0;
        _file.Write(CompactedLog.Header(generation, cutAddress, nextSequence, first, last, Count, dataEnd, LastTimestampMs));
        _file.Flush(flushToDisk: true);
        _file.Dispose();

        var path = Path.Combine(_directory, CompactedLog.NameOf(generation));
        File.Move(_temporary, path, overwrite: true);
        DirectorySync.Flush(_directory);
        _completed = true;
        return new CompactedLog(path, _pageSizeBits, generation, cutAddress, nextSequence, first, last, Count, dataEnd, LastTimestampMs);
    }

    public void Dispose()
    {
        if (_completed)
        {
            return;
        }

        _file.Dispose();
        try
        {
            File.Delete(_temporary);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            // The next open of the log deletes it.
        }
    }

    /// <summary>Room for an entry of <paramref name="size"/> bytes (its length prefix written), on this page or the next.</summary>
    private Span<byte> Reserve(int size)
    {
        var footprint = PageEntries.Footprint(size);
        if (_offset + footprint > _page.Length)
        {
            _file.Write(_page);
            Array.Clear(_page);
            _pageStart += _page.Length;
            _offset = 0;
        }

        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(_page.AsSpan(_offset), size);
        var entry = _page.AsSpan(_offset + PageEntries.EntryHeaderSize, size);
        _offset += footprint;
        return entry;
    }

    /// <summary>The bytes <paramref name="start"/>..+<paramref name="length"/> of the headers followed by the payload, as a part of each.</summary>
    private static void Slice(
        ReadOnlySpan<byte> headers, ReadOnlySpan<byte> payload, int start, int length, out ReadOnlySpan<byte> headersPart, out ReadOnlySpan<byte> payloadPart)
    {
        var end = start + length;
        headersPart = start < headers.Length ? headers[start..Math.Min(end, headers.Length)] : default;
        payloadPart = end > headers.Length ? payload[Math.Max(start - headers.Length, 0)..(end - headers.Length)] : default;
    }
}
