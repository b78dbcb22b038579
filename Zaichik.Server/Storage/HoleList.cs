using System.Buffers.Binary;

namespace Zaichik.Server.Storage;

/// <summary>
/// Sequences a topic lost to damaged storage: <see cref="FirstSequence"/>..<see cref="LastSequence"/>, both included.
/// When the damage has a place in the log, <see cref="FromAddress"/>..<see cref="ToAddress"/> (end excluded) is the
/// byte range readers step over; -1 when it has none (messages that never reached the disk before a crash).
/// </summary>
internal readonly record struct LogHole(long FirstSequence, long LastSequence, long FromAddress = -1, long ToAddress = -1)
{
    public long Count => LastSequence - FirstSequence + 1;

    public bool HasAddresses => FromAddress >= 0 && ToAddress > FromAddress;

    public override string ToString() => FirstSequence == LastSequence ? $"{FirstSequence}" : $"{FirstSequence}..{LastSequence}";
}

/// <summary>
/// The holes of one topic, kept in <c>holes</c> beside its log so that they are reported once and remembered across
/// restarts: <c>"ZKH2"[count u32][first i64, last i64, from i64, to i64]*[crc32c u32]</c>, replaced atomically and
/// fsynced. Readers look holes up on every page they enter, so the list is an immutable array swapped on change.
/// </summary>
internal sealed class HoleList
{
    public const string FileName = "holes";

    private static ReadOnlySpan<byte> Magic => "ZKH2"u8;

    private const int EntrySize = 4 * sizeof(long);

    private readonly string? _directory;
    private readonly Lock _lock = new();
    private LogHole[] _holes;

    /// <param name="directory">Where the list is kept; null keeps it in memory only.</param>
    public HoleList(string? directory)
    {
        _directory = directory;
        var damaged = false;
        _holes = directory is null ? [] : Load(directory, out damaged) ?? [];
        WasDamaged = damaged;
    }

    /// <summary>True when the file existed but could not be read (its holes are found again by readers).</summary>
    public bool WasDamaged { get; }

    public IReadOnlyList<LogHole> Holes => Volatile.Read(ref _holes);

    public bool IsEmpty => Volatile.Read(ref _holes).Length == 0;

    /// <summary>
    /// Records a hole unless every sequence in it is already known lost; true when it is new. Throws when the file cannot
    /// be written; the hole is known in memory all the same.
    /// </summary>
    public bool Add(LogHole hole)
    {
        lock (_lock)
        {
            if (Covers(hole.FirstSequence, hole.LastSequence))
            {
                return false;
            }

            // Known in memory at once (readers step over it); saved after, so a failed save loses only the record of it.
            var holes = _holes.Append(hole).OrderBy(known => known.FirstSequence).ToArray();
            Volatile.Write(ref _holes, holes);
            Save(holes);
            return true;
        }
    }

    /// <summary><paramref name="address"/>, or the end of the hole whose byte range holds it.</summary>
    public long StepOver(long address)
    {
        foreach (var hole in Volatile.Read(ref _holes))
        {
            if (hole.HasAddresses && address >= hole.FromAddress && address < hole.ToAddress)
            {
                return hole.ToAddress;
            }
        }

        return address;
    }

    /// <summary>True when every sequence in <paramref name="first"/>..<paramref name="last"/> lies in known holes.</summary>
    public bool Covers(long first, long last)
    {
        var next = first;
        foreach (var hole in Volatile.Read(ref _holes))
        {
            if (hole.FirstSequence <= next && hole.LastSequence >= next)
            {
                next = hole.LastSequence + 1;
                if (next > last)
                {
                    return true;
                }
            }
        }

        return next > last;
    }

    /// <summary>How many sequences in (<paramref name="after"/>, <paramref name="upTo"/>] are lost in holes.</summary>
    public long CountWithin(long after, long upTo)
    {
        var lost = 0L;
        foreach (var hole in Volatile.Read(ref _holes))
        {
            var first = Math.Max(hole.FirstSequence, after + 1);
            var last = Math.Min(hole.LastSequence, upTo);
            if (last >= first)
            {
                lost += last - first + 1;
            }
        }

        return lost;
    }

    /// <summary>Forgets holes that lie wholly before <paramref name="firstSequence"/> (the log no longer reaches them).</summary>
    public void ForgetBefore(long firstSequence)
    {
        lock (_lock)
        {
            if (_holes.All(hole => hole.LastSequence >= firstSequence))
            {
                return;
            }

            var holes = _holes.Where(hole => hole.LastSequence >= firstSequence).ToArray();
            Volatile.Write(ref _holes, holes);
            Save(holes);
        }
    }

    private void Save(LogHole[] holes)
    {
        if (_directory is null)
        {
            return;
        }

        var bytes = new byte[Magic.Length + sizeof(uint) + (holes.Length * EntrySize) + sizeof(uint)];
        Magic.CopyTo(bytes);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(Magic.Length), (uint)holes.Length);
        var at = Magic.Length + sizeof(uint);
        foreach (var hole in holes)
        {
            BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(at), hole.FirstSequence);
            BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(at + 8), hole.LastSequence);
            BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(at + 16), hole.FromAddress);
            BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(at + 24), hole.ToAddress);
            at += EntrySize;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at), LogRecord.Checksum(bytes.AsSpan(0, at)));
        Internal.FileReplacement.Replace(Path.Combine(_directory, FileName), bytes);
    }

    private static LogHole[]? Load(string directory, out bool damaged)
    {
        damaged = false;
        var path = Path.Combine(directory, FileName);
        if (Internal.FileKinds.Of(path) == Internal.FileKind.Missing)
        {
            return null;
        }

        try
        {
            var bytes = File.ReadAllBytes(path);
            var header = Magic.Length + sizeof(uint);
            if (bytes.Length >= header + sizeof(uint) && bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            {
                var count = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(Magic.Length));
                var end = header + ((long)count * EntrySize);
                if (end + sizeof(uint) == bytes.Length && BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)end)) == LogRecord.Checksum(bytes.AsSpan(0, (int)end)))
                {
                    var holes = new LogHole[count];
                    for (var i = 0; i < holes.Length; i++)
                    {
                        var at = header + (i * EntrySize);
                        holes[i] = new LogHole(
                            BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(at)),
                            BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(at + 8)),
                            BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(at + 16)),
                            BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(at + 24)));
                    }

                    return holes;
                }
            }
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
        }

        damaged = true;
        return null;
    }
}
