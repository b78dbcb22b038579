using System.Buffers.Binary;
using Zaichik.Server.Storage;
using Zaichik.Server.Storage.Internal;

namespace Zaichik.Tests.Storage;

/// <summary>Reads and damages a topic's segment files from outside the broker, by log address or by message sequence.</summary>
internal static class LogFiles
{
    /// <summary>Every entry in the segment files, walking pages the way FasterLog lays them out: address, length, sequence (0 when unreadable).</summary>
    public static List<(long Address, int Length, long Sequence)> Entries(string directory, StorageOptions options)
    {
        var entries = new List<(long, int, long)>();
        var pageSize = 1 << options.PageSizeBits;
        foreach (var segment in SegmentFiles.List(directory))
        {
            var bytes = File.ReadAllBytes(Path.Combine(directory, SegmentFiles.Prefix + segment));
            for (var offset = 0; offset < bytes.Length; offset += pageSize)
            {
                var page = new byte[pageSize];
                bytes.AsSpan(offset, Math.Min(pageSize, bytes.Length - offset)).CopyTo(page);
                var address = ((long)segment << options.SegmentSizeBits) + offset;
                var walk = new PageEntries(page, address, address == 0 ? 64 : 0);
                while (walk.Next(out var at, out var entry) == PageStep.Entry)
                {
                    entries.Add((at, entry.Length, LogRecord.TryRead(entry, out var record) ? record.Sequence : 0));
                }
            }
        }

        return entries;
    }

    /// <summary>The address of the (first) entry holding <paramref name="sequence"/>.</summary>
    public static long AddressOf(string directory, StorageOptions options, long sequence) =>
        Entries(directory, options).First(entry => entry.Sequence == sequence).Address;

    /// <summary>Overwrites bytes at a log address in its segment file.</summary>
    public static void Write(string directory, StorageOptions options, long address, ReadOnlySpan<byte> bytes)
    {
        var segment = (int)(address >> options.SegmentSizeBits);
        using var file = new FileStream(Path.Combine(directory, SegmentFiles.Prefix + segment), FileMode.Open, FileAccess.Write);
        file.Position = address & ((1L << options.SegmentSizeBits) - 1);
        file.Write(bytes);
    }

    /// <summary>
    /// Inverts one byte inside the entry of <paramref name="sequence"/>, after its header: its checksum no longer holds.
    /// Inverted, not overwritten with a constant: that byte is often the first of a random producer id, which was the
    /// constant once in 256 runs and left the entry whole.
    /// </summary>
    public static void Corrupt(string directory, StorageOptions options, long sequence)
    {
        var address = AddressOf(directory, options, sequence) + 4 + LogRecord.HeaderSize;
        Write(directory, options, address, [(byte)~Read(directory, options, address)]);
    }

    /// <summary>The byte at a log address in its segment file.</summary>
    public static byte Read(string directory, StorageOptions options, long address)
    {
        var segment = (int)(address >> options.SegmentSizeBits);
        using var file = new FileStream(Path.Combine(directory, SegmentFiles.Prefix + segment), FileMode.Open, FileAccess.Read);
        file.Position = address & ((1L << options.SegmentSizeBits) - 1);
        return (byte)file.ReadByte();
    }

    /// <summary>Sets the length prefix of the entry of <paramref name="sequence"/>.</summary>
    public static void SetLength(string directory, StorageOptions options, long sequence, int length)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, length);
        Write(directory, options, AddressOf(directory, options, sequence), bytes);
    }

    /// <summary>
    /// Rewrites every record of the log as the storage format 2 wrote it (which is format 3 without its optional
    /// fields: only the format byte and so the checksum differ), and declares format 2 in <c>topic.json</c>: the
    /// folder then looks exactly as a broker of the previous version left it. Returns how many records it rewrote.
    /// </summary>
    public static int RewriteAsFormat2(string directory, StorageOptions options)
    {
        var rewritten = 0;
        foreach (var (address, length, sequence) in Entries(directory, options).Where(entry => entry.Sequence > 0))
        {
            var segment = (int)(address >> options.SegmentSizeBits);
            var bytes = new byte[length];
            using (var file = new FileStream(Path.Combine(directory, SegmentFiles.Prefix + segment), FileMode.Open, FileAccess.Read))
            {
                file.Position = (address & ((1L << options.SegmentSizeBits) - 1)) + PageEntries.EntryHeaderSize;
                file.ReadExactly(bytes);
            }

            LogRecord.TryRead(bytes, out var record).ShouldBeTrue($"record {sequence} reads before the rewrite");
            (record.Producer.IsSet || record.HeadersLength > 0).ShouldBeFalse($"record {sequence} has fields format 2 cannot hold");
            bytes[4] = LogRecord.Format2;
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, LogRecord.Checksum(bytes.AsSpan(4)));
            Write(directory, options, address + PageEntries.EntryHeaderSize, bytes);
            rewritten++;
        }

        var settings = Path.Combine(directory, "topic.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(settings))!;
        json["format"] = 2;
        File.WriteAllText(settings, json.ToJsonString());
        return rewritten;
    }

    /// <summary>Damages a log's commit record: "deleted", "zeroed" or anything else for random bytes.</summary>
    public static void DamageCommitRecord(string directory, string damage)
    {
        var commit = Path.Combine(directory, CommitSlots.FileName);
        switch (damage)
        {
            case "deleted":
                File.Delete(commit);
                break;
            case "zeroed":
                File.WriteAllBytes(commit, new byte[2 * CommitSlots.SlotSize]);
                break;
            default:
                File.WriteAllBytes(commit, Enumerable.Range(0, 2 * CommitSlots.SlotSize).Select(i => (byte)((i * 131) + 17)).ToArray());
                break;
        }
    }

    /// <summary>Replaces the file at <paramref name="path"/> with a "fifo" or, for anything else, a directory.</summary>
    public static async Task ReplaceWithWrongKindAsync(string path, string kind)
    {
        File.Delete(path);
        if (kind == "fifo")
        {
            using var mkfifo = System.Diagnostics.Process.Start("mkfifo", path);
            await mkfifo.WaitForExitAsync();
        }
        else
        {
            Directory.CreateDirectory(path);
        }
    }
}
