using System.Text.RegularExpressions;
using Zaichik.Protocol;
using static Zaichik.Tests.Protocol.CodecTestHelpers;

namespace Zaichik.Tests.Protocol;

/// <summary>The hex examples in docs/protocol.md are exactly what FrameWriter produces, so the document cannot drift.</summary>
public sealed partial class DocumentedExamplesTests
{
    /// <summary>The header block of the examples: one text header, <c>trace</c> = <c>t1</c>.</summary>
    private static readonly byte[] TraceHeader = HeaderBlockOf("trace", "t1");

    /// <summary>Every worked example, by its bold title, in the order the document gives them.</summary>
    private static readonly (string Title, byte[] Bytes)[] WorkedExamples =
    [
        ($"Client Hello, version {ProtocolVersion.Current}", Encode(w => FrameWriter.Write(w, new HelloFrame(ProtocolVersion.Current, Token: "orders-writer-01", ProducerId: 7_001)))),
        ("Server Hello", Encode(w => FrameWriter.Write(w, new HelloFrame(ProtocolVersion.Current, IdleTimeoutMs: 60_000)))),
        ("Ping", Encode(w => FrameWriter.Write(w, new PingFrame(1)))),
        ("CreateTopic", Encode(w => FrameWriter.Write(w, new CreateTopicFrame(1, "orders", 86_400_000, 0, Durability.Interval, 500)))),
        ("Publish", Encode(w => FrameWriter.Write(w, new PublishFrame(7, "orders", "a1"u8.ToArray(), "hello"u8.ToArray())))),
        ("Ack of the Publish", Encode(w => FrameWriter.Write(w, new AckFrame(7, 1, Duplicate: false, Durable: true)))),
        ("Idempotent Publish", Encode(w => FrameWriter.Write(w, new PublishFrame(8, "orders", null, "hi"u8.ToArray(), ProducerSequence: 1, Headers: TraceHeader)))),
        ("Subscribe", Encode(w => FrameWriter.Write(w, new SubscribeFrame(2, "orders", StartPosition.Retained, 10, "billing")))),
        ("Ack of the Subscribe", Encode(w => FrameWriter.Write(w, new AckFrame(2, 1, Duplicate: false)))),
        ("Message", Encode(w => FrameWriter.Write(w, new MessageFrame("orders", 2, 1_795_773_600_000, null, "hi"u8.ToArray(), TraceHeader)))),
        ("Subscribe from a sequence", Encode(w => FrameWriter.Write(w, new SubscribeFrame(3, "orders", StartPosition.Sequence(42), 1)))),
        ("Subscribe to a consumer group", Encode(w => FrameWriter.Write(w, new SubscribeFrame(
            4, "orders", StartPosition.Retained, 10, Group: "invoicing", AckWaitMs: 60_000, MaxDeliver: 5, DeadLetterTopic: "orders.dead")))),
        ("Single Commit", Encode(w => FrameWriter.Write(w, new CommitFrame("orders", 2, Single: true)))),
        ("Nack", Encode(w => FrameWriter.Write(w, new NackFrame("orders", 3, DelayMs: 5_000)))),
        ("Error", Encode(w => FrameWriter.Write(w, new ErrorFrame(null, ErrorCode.UnsupportedVersion, "v2")))),
    ];

    [Fact]
    public void Document_title_names_the_current_protocol_version()
    {
        var firstLine = ReadDocument()[0];

        firstLine.ShouldBe($"# Zaichik wire protocol, version {ProtocolVersion.Current}");
    }

    [Fact]
    public void Hello_field_table_names_the_current_protocol_version()
    {
        var document = string.Join('\n', ReadDocument());

        document.ShouldContain($"This document is version `{ProtocolVersion.Current}`.");
    }

    [Fact]
    public void Frame_type_table_lists_every_frame_type_with_its_value_and_nothing_else()
    {
        var documented = ReadSection("## Framing")
            .Select(line => FrameTypeRow().Match(line))
            .Where(match => match.Success)
            .Select(match => $"0x{match.Groups[1].Value} {match.Groups[2].Value}")
            .ToList();

        documented.ShouldBe(
            Enum.GetValues<FrameType>().Select(type => $"0x{(byte)type:X2} {type}").ToList(),
            "the frame type table must list every FrameType, in order, with its wire value");
    }

    [Fact]
    public void Every_frame_type_has_a_field_table_section_headed_with_its_value()
    {
        var headings = ReadDocument().Where(line => line.StartsWith("### ", StringComparison.Ordinal)).ToList();

        foreach (var type in Enum.GetValues<FrameType>())
        {
            headings.ShouldContain(
                heading => heading.Contains($"{type} (`0x{(byte)type:X2}`)", StringComparison.Ordinal),
                $"the Frames section must have a heading for {type} with its value 0x{(byte)type:X2}");
        }
    }

    [Fact]
    public void Error_code_table_lists_every_code_with_its_number_and_nothing_else()
    {
        var documented = ReadSection("## Error codes")
            .Select(line => ErrorCodeRow().Match(line))
            .Where(match => match.Success && match.Groups[2].Value != "(retired)")
            .Select(match => $"{match.Groups[1].Value} {match.Groups[2].Value}")
            .ToList();

        documented.ShouldBe(
            Enum.GetValues<ErrorCode>().Select(code => $"{(ushort)code} {code}").ToList(),
            "the error code table must list every ErrorCode, in order, with its wire value");
    }

    [Fact]
    public void Version_history_has_a_line_for_the_current_version()
    {
        var history = ReadSection("## Version history");

        history.ShouldContain(
            line => line.StartsWith($"| {ProtocolVersion.Current} ", StringComparison.Ordinal),
            $"the version history must say what version {ProtocolVersion.Current} changed");
    }

    [Fact]
    public void Document_no_longer_speaks_of_offsets_outside_the_version_history()
    {
        var lines = ReadDocument();
        var history = Array.IndexOf(lines, "## Version history");

        var mentions = lines.Take(history).Where(line => line.Contains("offset", StringComparison.OrdinalIgnoreCase)).ToList();

        mentions.ShouldBeEmpty("messages are addressed by sequence since version 4; only the history may name offsets");
    }

    [Fact]
    public void Worked_examples_are_the_expected_frames_in_order()
    {
        var titles = ReadWorkedExamples().Select(e => e.Title).ToList();

        titles.ShouldBe(WorkedExamples.Select(e => e.Title).ToList(), "every worked example must have a test, and every test an example");
    }

    [Fact]
    public void Every_worked_example_is_byte_exact()
    {
        var documented = ReadWorkedExamples();

        foreach (var (title, bytes) in WorkedExamples)
        {
            var example = documented.FirstOrDefault(e => e.Title == title);
            example.Hex.ShouldNotBeNull($"the document has no worked example titled '{title}'");
            example.Hex.ShouldBe(Hex(bytes), $"worked example '{title}'");
        }
    }

    [Fact]
    public void Publish_example_on_one_line_is_byte_exact()
    {
        var document = string.Join('\n', ReadDocument());
        var publish = WorkedExamples.Single(e => e.Title == "Publish").Bytes;

        document.ShouldContain($"As one line: `{Hex(publish)}`.");
    }

    [Fact]
    public void Header_block_example_is_byte_exact()
    {
        var document = string.Join('\n', ReadDocument());

        document.ShouldContain($"one text header `trace` = `t1`: `{Hex(TraceHeader)}`.");
    }

    [Fact]
    public void Inline_bare_commit_and_close_frames_are_byte_exact()
    {
        var document = string.Join('\n', ReadDocument());

        document.ShouldContain($"A bare Commit is exactly the frame `{Hex(Encode(w => FrameWriter.Write(w, CommitFrame.All)))}`.");
        document.ShouldContain($"No fields: the frame is always `{Hex(Encode(w => FrameWriter.Write(w, default(CloseFrame))))}`.");
    }

    private static byte[] HeaderBlockOf(string key, string text)
    {
        var block = new System.Buffers.ArrayBufferWriter<byte>();
        HeaderBlock.WriteEntry(block, key, isText: true, System.Text.Encoding.UTF8.GetBytes(text));
        return block.WrittenSpan.ToArray();
    }

    /// <summary>Each fenced block of the Worked examples section, with the bold title before it and its hex bytes joined.</summary>
    private static List<(string Title, string Hex)> ReadWorkedExamples()
    {
        var lines = ReadDocument();
        var start = Array.IndexOf(lines, "## Worked examples");
        start.ShouldBeGreaterThan(0, "the document must have a Worked examples section");

        var examples = new List<(string Title, string Hex)>();
        string? title = null;
        List<string>? block = null;
        foreach (var line in lines.Skip(start + 1).TakeWhile(l => !l.StartsWith("## ", StringComparison.Ordinal)))
        {
            if (line.StartsWith("```", StringComparison.Ordinal))
            {
                if (block is null)
                {
                    title.ShouldNotBeNull("every worked example starts with a bold title");
                    block = [];
                }
                else
                {
                    examples.Add((title!, string.Join(' ', block)));
                    block = null;
                    title = null;
                }
            }
            else if (block is not null)
            {
                // The bytes come first; two or more spaces separate them from the explanation.
                var bytes = ColumnGap().Split(line.Trim())[0];
                foreach (var token in bytes.Split(' '))
                {
                    HexByte().IsMatch(token).ShouldBeTrue($"'{token}' in the '{title}' example is not an upper-case hex byte");
                    block.Add(token);
                }
            }
            else if (BoldTitle().Match(line) is { Success: true } match)
            {
                title = match.Groups[1].Value;
            }
        }

        block.ShouldBeNull("a fenced block in the Worked examples section is not closed");
        return examples;
    }

    /// <summary>The lines after <paramref name="heading"/> up to the next heading of the same level.</summary>
    private static List<string> ReadSection(string heading)
    {
        var lines = ReadDocument();
        var start = Array.IndexOf(lines, heading);
        start.ShouldBeGreaterThan(0, $"the document must have a '{heading}' section");
        return [.. lines.Skip(start + 1).TakeWhile(l => !l.StartsWith("## ", StringComparison.Ordinal))];
    }

    private static string[] ReadDocument()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            var path = Path.Combine(folder.FullName, "docs", "protocol.md");
            if (File.Exists(path))
            {
                return File.ReadAllLines(path);
            }
        }

        throw new FileNotFoundException("docs/protocol.md not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"\s{2,}")]
    private static partial Regex ColumnGap();

    [GeneratedRegex("^[0-9A-F]{2}$")]
    private static partial Regex HexByte();

    [GeneratedRegex(@"^\*\*(.+?)\*\*")]
    private static partial Regex BoldTitle();

    [GeneratedRegex(@"^\|\s*(\d+)\s*\|\s*(\S+)\s*\|")]
    private static partial Regex ErrorCodeRow();

    [GeneratedRegex(@"^\|\s*`0x([0-9A-F]{2})`\s*\|\s*(\S+)\s*\|")]
    private static partial Regex FrameTypeRow();
}
