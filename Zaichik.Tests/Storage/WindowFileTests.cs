using System.Text;
using Zaichik.Server.Storage;

namespace Zaichik.Tests.Storage;

public sealed class WindowFileTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("zaichik-windows-").FullName;

    private string FilePath => Path.Combine(_directory, WindowFile.FileName);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static (long Sequence, long TimestampMs, byte[]? Key, ProducerStamp Producer) Keyed(long sequence, string key) =>
        (sequence, 1_000 + sequence, Encoding.UTF8.GetBytes(key), ProducerStamp.None);

    private static WindowBlock Block(params (long Sequence, long TimestampMs, byte[]? Key, ProducerStamp Producer)[] records)
    {
        var block = new WindowBlock();
        foreach (var (sequence, timestampMs, key, producer) in records)
        {
            block.Add(sequence, timestampMs, key is not null, key, producer);
        }

        return block;
    }

    private static string Describe((long Sequence, long TimestampMs, byte[]? Key, ProducerStamp Producer) record) =>
        $"{record.Sequence}@{record.TimestampMs} key={(record.Key is null ? "none" : $"'{Convert.ToHexString(record.Key)}'")} producer={record.Producer}";

    /// <summary>Opens the file and gives what it read, as <see cref="Describe"/> says it.</summary>
    private WindowFile Open(out List<string> read, out List<WindowFileDamage> damage)
    {
        var records = new List<string>();
        var file = WindowFile.Open(
            _directory,
            (in WindowRecord record) => records.Add(Describe((record.Sequence, record.TimestampMs, record.HasKey ? record.Key.ToArray() : null, record.Producer))),
            out damage);
        read = records;
        return file;
    }

    private static long SequenceOf(string described) => long.Parse(described[..described.IndexOf('@')], System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void Records_come_back_in_order_with_empty_keys_longest_keys_and_producers_told_apart()
    {
        var longest = new byte[ushort.MaxValue];
        Random.Shared.NextBytes(longest);
        (long, long, byte[]?, ProducerStamp)[] written =
        [
            Keyed(1, "a"),
            (2, 1_002, [], ProducerStamp.None),
            (3, 1_003, null, new ProducerStamp(9, 4)),
            (4, 1_004, Encoding.UTF8.GetBytes("k"), new ProducerStamp(ulong.MaxValue, 5)),
            (5, 1_005, longest, ProducerStamp.None),
        ];
        var file = Open(out var none, out _);
        none.ShouldBeEmpty();
        var block = Block(written[..2]);
        block.Add(6, 1_006, hasKey: false, default, ProducerStamp.None);
        block.Count.ShouldBe(2, "a record with neither a key nor a producer is left out");
        file.Append(block);
        file.Append(Block(written[2..]));

        Open(out var read, out var damage);

        damage.ShouldBeEmpty();
        read.ShouldBe(written.Select(Describe));
        read[1].ShouldContain("key=''", customMessage: "an empty key is a key");
    }

    [Fact]
    public void A_torn_last_block_is_reported_and_cut_off_by_the_next_append()
    {
        var file = Open(out _, out _);
        file.Append(Block(Keyed(1, "a")));
        var whole = new FileInfo(FilePath).Length;
        file.Append(Block(Keyed(2, "b"), Keyed(3, "c")));
        using (var stream = File.OpenWrite(FilePath))
        {
            stream.SetLength(stream.Length - 5);
        }

        var reopened = Open(out var read, out var damage);

        read.ShouldBe([Describe(Keyed(1, "a"))]);
        damage.ShouldBe([new WindowFileDamage(whole, new FileInfo(FilePath).Length - whole)]);
        reopened.Append(Block(Keyed(4, "d")));
        Open(out var after, out var none);
        none.ShouldBeEmpty();
        after.Select(SequenceOf).ShouldBe([1L, 4L]);
    }

    [Fact]
    public void A_failed_append_is_cut_off_by_the_next_one()
    {
        var file = Open(out _, out _);
        file.Append(Block(Keyed(1, "a")));

        // As a write that failed halfway leaves it: bytes past the length the writer knows.
        using (var stream = new FileStream(FilePath, FileMode.Append))
        {
            stream.Write("ZKW1garbage"u8);
        }

        file.Append(Block(Keyed(2, "b")));
        Open(out var read, out var damage);

        damage.ShouldBeEmpty();
        read.Select(SequenceOf).ShouldBe([1L, 2L]);
    }

    [Fact]
    public void Damage_in_the_middle_costs_that_block_and_the_reader_finds_the_next_one()
    {
        var file = Open(out _, out _);
        file.Append(Block(Keyed(1, "a")));
        var first = new FileInfo(FilePath).Length;
        file.Append(Block(Keyed(2, "b")));
        var second = new FileInfo(FilePath).Length;
        file.Append(Block(Keyed(3, "c")));
        var bytes = File.ReadAllBytes(FilePath);

        // The length field of block 2 says "more than the file holds": the reader must not trust it.
        bytes[first + 5] = 0xFF;
        File.WriteAllBytes(FilePath, bytes);

        Open(out var read, out var damage);

        read.Select(SequenceOf).ShouldBe([1L, 3L]);
        damage.ShouldBe([new WindowFileDamage(first, second - first)]);
    }

    [Fact]
    public void A_block_whose_checksum_holds_but_whose_records_do_not_parse_is_damage_and_none_of_its_records_is_given()
    {
        var block = Block(Keyed(1, "a"), Keyed(2, "b"));
        var sealedBlock = block.Seal().ToArray();

        // The second record's flags claim a producer the record does not have room for.
        sealedBlock[12 + 20] = 3;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(sealedBlock.AsSpan(8), Zaichik.Server.Storage.LogRecord.Checksum(sealedBlock.AsSpan(12)));
        File.WriteAllBytes(FilePath, sealedBlock);

        var file = Open(out var read, out var damage);

        read.ShouldBeEmpty();
        damage.ShouldBe([new WindowFileDamage(0, sealedBlock.Length)]);
        file.Length.ShouldBe(0, "the next append replaces the damaged block");
    }

    [Fact]
    public void An_empty_replacement_deletes_the_file_and_a_directory_in_its_place_is_refused_with_its_name()
    {
        var file = Open(out _, out _);
        file.Append(Block(Keyed(1, "a")));
        file.Replace(new WindowBlock());
        File.Exists(FilePath).ShouldBeFalse();
        file.Length.ShouldBe(0);

        Directory.CreateDirectory(FilePath);
        var refused = Should.Throw<InvalidDataException>(() => Open(out _, out _));
        refused.Message.ShouldContain(FilePath);
    }

    [Fact]
    public void It_asks_to_be_rewritten_once_it_has_doubled_past_1_MiB_and_a_rewrite_keeps_what_it_is_told()
    {
        var file = Open(out _, out _);
        var key = new string('k', 10_000);
        var sequence = 0L;
        while (!file.WantsRewrite)
        {
            file.Append(Block(Keyed(++sequence, key)));
            sequence.ShouldBeLessThan(110, "1 MiB is about 105 records of 10 KB");
        }

        file.Length.ShouldBeGreaterThan(WindowFile.MinimumRewriteBytes);
        var last = sequence;
        file.Rewrite((block, record) =>
        {
            if (record.Sequence == last)
            {
                block.Add(record.Sequence, record.TimestampMs, record.HasKey, record.Key, record.Producer);
            }
        });

        file.WantsRewrite.ShouldBeFalse();
        Open(out var read, out _);
        read.ShouldBe([Describe(Keyed(last, key))]);
    }

    [Fact]
    public void A_producers_consecutive_publishes_are_written_as_a_run_of_a_few_bytes_each_and_read_back_exactly()
    {
        var written = new List<(long Sequence, long TimestampMs, byte[]? Key, ProducerStamp Producer)>();
        var sequence = 100L;
        var timestampMs = 5_000L;
        for (var i = 1UL; i <= 1_000; i++)
        {
            // Producer 1 steadily; producer 2 now and then between (ending producer 1's run), a keyed one, a number skipped.
            written.Add((sequence++, timestampMs, null, new ProducerStamp(1, i)));
            timestampMs += i % 3 == 0 ? 1 : 0;
            if (i % 250 == 0)
            {
                written.Add((sequence++, timestampMs, null, new ProducerStamp(2, i)));
                written.Add((sequence++, timestampMs, Encoding.UTF8.GetBytes($"k{i}"), new ProducerStamp(3, i)));
            }

            sequence += i % 7 == 0 ? 5 : 0;
        }

        written.Add((sequence + 1, timestampMs, null, new ProducerStamp(1, 1_002)));
        var file = Open(out _, out _);
        file.Append(Block([.. written]));

        Open(out var read, out var damage);

        damage.ShouldBeEmpty();
        read.ShouldBe(written.Select(Describe));
        file.Length.ShouldBeLessThan(written.Count * 4, "a run costs a few bytes per publish, not 33");
    }

    [Fact]
    public void A_run_whose_steps_do_not_parse_is_damage()
    {
        var block = Block((1, 1_000, null, new ProducerStamp(1, 1)), (2, 1_001, null, new ProducerStamp(1, 2)));
        var sealedBlock = block.Seal().ToArray();

        // The run's one pair of steps: a sequence step of zero would give the next publish the same sequence.
        sealedBlock[^2] = 0;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(sealedBlock.AsSpan(8), Zaichik.Server.Storage.LogRecord.Checksum(sealedBlock.AsSpan(12)));
        File.WriteAllBytes(FilePath, sealedBlock);

        Open(out var read, out var damage);

        read.ShouldBeEmpty();
        damage.ShouldHaveSingleItem();
    }
}
