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
    private int _truncating;
    private bool _closing;

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

    /// <summary>
    /// FasterLog removes the segments a commit left below the log's begin from a pool thread of its own, under the
    /// log's epoch. When FasterLog is disposed before that thread runs, the epoch it protects with is reset, and the
    /// thread spins forever waiting for it (a core lost for good, seen after idle closes that followed a truncating
    /// sweep). So once the log starts closing (<see cref="CloseAsync"/>) truncations are skipped, and the log removes
    /// those segments itself after FasterLog is gone (<see cref="SegmentFiles.DeleteBelow"/>).
    /// </summary>
    public override void TruncateUntilAddress(long toAddress)
    {
        if (!EnterTruncation())
        {
            return;
        }

        try
        {
            base.TruncateUntilAddress(toAddress);
        }
        finally
        {
            Interlocked.Decrement(ref _truncating);
        }
    }

    /// <inheritdoc cref="TruncateUntilAddress"/>
    public override void TruncateUntilAddressAsync(long toAddress, AsyncCallback callback, IAsyncResult result)
    {
        if (!EnterTruncation())
        {
            callback(result);
            return;
        }

        try
        {
            base.TruncateUntilAddressAsync(toAddress, callback, result);
        }
        finally
        {
            Interlocked.Decrement(ref _truncating);
        }
    }

    /// <summary>Stops truncations from starting, and waits (at most <paramref name="timeout"/>) for those under way.</summary>
    public async ValueTask<bool> CloseAsync(TimeSpan timeout)
    {
        Volatile.Write(ref _closing, true);
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (Volatile.Read(ref _truncating) > 0)
        {
            if (Environment.TickCount64 > deadline)
            {
                return false;
            }

            await Task.Delay(1).ConfigureAwait(false);
        }

        return true;
    }

    private bool EnterTruncation()
    {
        Interlocked.Increment(ref _truncating);
        if (Volatile.Read(ref _closing))
        {
            Interlocked.Decrement(ref _truncating);
            return false;
        }

        return true;
    }

    public override long GetFileSize(int segment) => SegmentSize;

    public override bool TryComplete() => true;

    public override void Dispose()
    {
        // The segment files belong to the log, which closes them after FasterLog is gone.
    }
}
