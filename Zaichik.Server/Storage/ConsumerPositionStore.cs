using System.Buffers.Binary;
using Zaichik.Protocol;

namespace Zaichik.Server.Storage;

/// <summary>
/// The committed offsets of a topic's durable consumers, one small file each under <c>consumers/</c> beside the
/// topic's log. A file is replaced atomically (write aside, then rename) on every commit, so a killed process
/// leaves either the old offset or the new one, never a torn file.
/// </summary>
internal sealed class ConsumerPositionStore
{
    private const string Extension = ".offset";
    private readonly string _directory;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, long> _committed = new(StringComparer.Ordinal);
    private readonly bool _flushToDisk;

    /// <param name="flushToDisk">
    /// Fsync each position and its folder before Save returns, so that a power cut loses no Commit (for Always topics).
    /// Without it a position survives a crash of the process but may fall back to an older one after a power cut, and
    /// the consumer receives those messages again.
    /// </param>
    public ConsumerPositionStore(string topicDirectory, bool flushToDisk = false)
    {
        _flushToDisk = flushToDisk;
        _directory = Path.Combine(topicDirectory, "consumers");
        if (!Directory.Exists(_directory))
        {
            return;
        }

        foreach (var file in Directory.EnumerateFiles(_directory, "*" + Extension))
        {
            var name = Path.GetFileNameWithoutExtension(file);
            var bytes = File.ReadAllBytes(file);
            if (ConsumerName.Validate(name) is null && bytes.Length == sizeof(long))
            {
                _committed[name] = BinaryPrimitives.ReadInt64LittleEndian(bytes);
            }
        }
    }

    /// <summary>The last offset <paramref name="name"/> committed, or null if it never did.</summary>
    public long? Get(string name)
    {
        lock (_lock)
        {
            return _committed.TryGetValue(name, out var offset) ? offset : null;
        }
    }

    /// <summary>The smallest committed offset of any durable consumer, or null when there are none.</summary>
    public long? Lowest()
    {
        lock (_lock)
        {
            return _committed.Count == 0 ? null : _committed.Values.Min();
        }
    }

    /// <summary>Records that <paramref name="name"/> committed up to <paramref name="offset"/>.</summary>
    public void Save(string name, long offset)
    {
        Span<byte> bytes = stackalloc byte[sizeof(long)];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, offset);
        lock (_lock)
        {
            if (_committed.TryGetValue(name, out var previous) && previous >= offset)
            {
                return;
            }

            Directory.CreateDirectory(_directory);
            var path = Path.Combine(_directory, name + Extension);
            var temporary = path + ".tmp";
            using (var file = File.Create(temporary))
            {
                file.Write(bytes);
                if (_flushToDisk)
                {
                    file.Flush(flushToDisk: true);
                }
            }

            File.Move(temporary, path, overwrite: true);
            if (_flushToDisk)
            {
                Internal.DirectorySync.Flush(_directory);
            }

            _committed[name] = offset;
        }
    }
}
