using FASTER.core;

namespace Zaichik.Server.Storage.Internal;

/// <summary>
/// FasterLog's device over a topic's <see cref="SegmentFiles"/>. Every operation completes on the calling thread
/// (a page-cache read or write of at most a page) and reports failure through the callback's error code instead of
/// throwing or leaving the callback uncalled, so no FasterLog thread ever waits on a pool thread for an I/O, nor on
/// an I/O that never finishes. Writes are not write-through: durability comes from
/// <see cref="SegmentFiles.Flush"/>, which the commit manager calls before it records a commit.
/// </summary>
internal sealed class SegmentDevice : StorageDeviceBase
{
    /// <summary>The error code a failed I/O reports to FasterLog (any non-zero value is a failure to it).</summary>
    private const uint IoFailed = 5;

    private readonly SegmentFiles _files;

    public SegmentDevice(SegmentFiles files)
        : base(Path.Combine(files.Directory, "log"), 512, -1)
    {
        _files = files;
    }

    /// <summary>The last I/O failure, for the log to report; cleared by the next successful write.</summary>
    public Exception? LastFailure { get; private set; }

    /// <summary>Raised (on the writing thread) when a write fails: FasterLog then fails the log for good.</summary>
    public event Action<Exception>? WriteFailed;

    public override unsafe void WriteAsync(IntPtr sourceAddress, int segmentId, ulong destinationAddress, uint numBytesToWrite, DeviceIOCompletionCallback callback, object context)
    {
        try
        {
            _files.Write(segmentId, (long)destinationAddress, new ReadOnlySpan<byte>((void*)sourceAddress, (int)numBytesToWrite));
            LastFailure = null;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            LastFailure = exception;
            WriteFailed?.Invoke(exception);
            callback(IoFailed, 0, context);
            return;
        }

        callback(0, numBytesToWrite, context);
    }

    public override unsafe void ReadAsync(int segmentId, ulong sourceAddress, IntPtr destinationAddress, uint readLength, DeviceIOCompletionCallback callback, object context)
    {
        var destination = new Span<byte>((void*)destinationAddress, (int)readLength);
        try
        {
            // Past the end of a file (a partly written last page, a truncated segment) reads as zeros: to FasterLog an
            // unwritten page. A missing segment reads the same way; the topic's readers find out what is lost by sequence.
            var read = _files.Read(segmentId, (long)sourceAddress, destination);
            destination[Math.Max(read, 0)..].Clear();
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            LastFailure = exception;
            callback(IoFailed, 0, context);
            return;
        }

        callback(0, readLength, context);
    }

    public override void RemoveSegmentAsync(int segment, AsyncCallback callback, IAsyncResult result)
    {
        try
        {
            _files.Delete(segment);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            // A segment that cannot be removed only wastes space; truncation goes on.
            LastFailure = exception;
        }

        callback(result);
    }

    public override long GetFileSize(int segment) => SegmentSize;

    public override bool TryComplete() => true;

    public override void Dispose()
    {
        // The segment files belong to the log, which closes them after FasterLog is gone.
    }
}
