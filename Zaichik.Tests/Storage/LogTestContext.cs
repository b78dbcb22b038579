using System.Text;
using Microsoft.Extensions.Time.Testing;
using Zaichik.Server.Storage;
using Zaichik.Server.Storage.Internal;
using Zaichik.Tests.EndToEnd;

namespace Zaichik.Tests.Storage;

/// <summary>
/// A topic log in a temporary folder on a fake clock, with the log lines it writes kept, and the means to damage its
/// files the way a crash, a bad disk or an operator would: by address, by record, by segment.
/// </summary>
internal sealed class LogTestContext : IAsyncDisposable
{
    /// <summary>Small pages and segments, so a few hundred records span many of each.</summary>
    public static readonly StorageOptions SmallPages = new() { PageSizeBits = 12, MemorySizeBits = 13, SegmentSizeBits = 15 };

    private readonly List<string> _folders = [];

    private LogTestContext(string directory, StorageOptions options)
    {
        Directory = directory;
        Options = options;
        _folders.Add(directory);
    }

    public string Directory { get; private set; }

    public StorageOptions Options { get; }

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public CapturingLoggerProvider Logs { get; } = new();

    public FileBudget Budget { get; } = new(10_000);

    public TopicLog? Log { get; private set; }

    public static LogTestContext Create(StorageOptions? options = null) =>
        new(Path.Combine(Path.GetTempPath(), "zaichik-log-" + Guid.NewGuid().ToString("N")), options ?? SmallPages);

    /// <summary>Opens (recovers) the log in <see cref="Directory"/>.</summary>
    public TopicLog Open(bool inMemory = false) =>
        Log = TopicLog.Open("test", Directory, Options, Budget, Time, Logs.CreateLogger("log"), inMemory);

    public async Task CloseAsync()
    {
        if (Log is not null)
        {
            await Log.DisposeAsync();
            Log = null;
        }
    }

    /// <summary>Appends <paramref name="count"/> messages "m0", "m1"... (padded to <paramref name="size"/> bytes); returns their sequences.</summary>
    public async Task<List<long>> AppendAsync(int count, int size = 100, string prefix = "m", bool advanceClock = true)
    {
        var sequences = new List<long>();
        for (var i = 0; i < count; i++)
        {
            if (advanceClock)
            {
                Time.Advance(TimeSpan.FromMilliseconds(1));
            }

            var payload = Encoding.UTF8.GetBytes($"{prefix}{i}".PadRight(size, '.'));
            var now = Time.GetUtcNow().ToUnixTimeMilliseconds();
            if (!Log!.TryAppend(now, null, payload, default, ProducerStamp.None, out var sequence))
            {
                sequence = await Log.AppendAsync(now, null, payload, default, ProducerStamp.None, CancellationToken.None);
            }

            sequences.Add(sequence);
        }

        return sequences;
    }

    /// <summary>Every message a reader from the beginning meets, as (sequence, payload up to its padding).</summary>
    public async Task<List<(long Sequence, string Payload)>> ReadAllAsync(LogReader? reader = null)
    {
        var owned = reader is null;
        reader ??= Log!.OpenReaderAtBegin();
        try
        {
            var messages = new List<(long, string)>();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            while (true)
            {
                while (reader.TryRead(out var message))
                {
                    messages.Add((message.Sequence, Encoding.UTF8.GetString(message.Payload).TrimEnd('.')));
                    reader.Release();
                }

                if (reader.Position >= Log!.TailAddress)
                {
                    return messages;
                }

                (await reader.WaitAsync(timeout.Token)).ShouldBeTrue();
            }
        }
        finally
        {
            if (owned)
            {
                reader.Dispose();
            }
        }
    }

    /// <summary>
    /// Copies the folder as it is now, while the log is open, into a new folder, and points the context at the copy: the
    /// files a kill -9 would leave (what was written is in them, whether committed or not).
    /// </summary>
    public string CrashCopy()
    {
        var copy = Path.Combine(Path.GetTempPath(), "zaichik-log-crash-" + Guid.NewGuid().ToString("N"));
        CopyFolder(Directory, copy);
        _folders.Add(copy);
        Directory = copy;
        Log = null;
        return copy;
    }

    /// <summary>The log's entries as they lie in its segment files (see <see cref="LogFiles.Entries"/>).</summary>
    public List<(long Address, int Length, long Sequence)> Entries() => LogFiles.Entries(Directory, Options);

    /// <summary>The address of the entry holding <paramref name="sequence"/> (its length prefix).</summary>
    public long AddressOf(long sequence) => LogFiles.AddressOf(Directory, Options, sequence);

    public string SegmentPath(int segment) => Path.Combine(Directory, SegmentFiles.Prefix + segment);

    public void Write(long address, ReadOnlySpan<byte> bytes) => LogFiles.Write(Directory, Options, address, bytes);

    public void Zero(long address, int count) => Write(address, new byte[count]);

    public void Corrupt(long sequence) => LogFiles.Corrupt(Directory, Options, sequence);

    public void SetLength(long sequence, int length) => LogFiles.SetLength(Directory, Options, sequence, length);

    public async ValueTask DisposeAsync()
    {
        await CloseAsync();
        foreach (var folder in _folders)
        {
            try
            {
                System.IO.Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static void CopyFolder(string from, string to)
    {
        System.IO.Directory.CreateDirectory(to);
        foreach (var file in System.IO.Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }

        foreach (var folder in System.IO.Directory.GetDirectories(from))
        {
            CopyFolder(folder, Path.Combine(to, Path.GetFileName(folder)));
        }
    }
}
