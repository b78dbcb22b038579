using Zaichik.Server.Storage;

namespace Zaichik.Tests.Storage;

public sealed class TopicCatalogTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "zaichik-catalog-" + Guid.NewGuid().ToString("N"));

    public TopicCatalogTests() => Directory.CreateDirectory(_directory);

    private string CatalogFile => Path.Combine(_directory, TopicCatalog.FileName);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Topics_added_concurrently_are_all_read_back_in_the_order_they_were_recorded()
    {
        using (var catalog = TopicCatalog.Open(_directory, _ => [], out var empty, out var recovered))
        {
            empty.ShouldBeEmpty();
            recovered.ShouldBeNull();
            await Task.WhenAll(Enumerable.Range(0, 1_000).Select(i => catalog.AddAsync(Entry($"t{i}"))));
        }

        using var reopened = TopicCatalog.Open(_directory, _ => [], out var entries, out var again);

        again.ShouldBeNull();
        entries.Select(entry => entry.Name).Order().ShouldBe(Enumerable.Range(0, 1_000).Select(i => $"t{i}").Order());
        entries.ShouldAllBe(entry => entry.RetentionTtlMs == 60_000 && entry.Durability == 2 && entry.CommitIntervalMs == 100);
    }

    [Fact]
    public async Task A_torn_last_record_is_dropped_and_the_topic_is_recovered_from_its_folder()
    {
        using (var catalog = TopicCatalog.Open(_directory, _ => [], out _, out _))
        {
            await catalog.AddAsync(Entry("kept"));
            await catalog.AddAsync(Entry("torn"));
        }

        using (var file = new FileStream(CatalogFile, FileMode.Open))
        {
            file.SetLength(file.Length - 5);
        }

        using var reopened = TopicCatalog.Open(_directory, _ => [Entry("torn")], out var entries, out var recovered);

        entries.Select(entry => entry.Name).ShouldBe(["kept", "torn"]);
        recovered.ShouldNotBeNull().ShouldContain("1 recovered from their folders");
    }

    [Fact]
    public async Task A_damaged_record_in_the_middle_keeps_those_before_it_and_rebuilds_the_rest_from_the_folders()
    {
        using (var catalog = TopicCatalog.Open(_directory, _ => [], out _, out _))
        {
            foreach (var name in new[] { "a", "b", "c", "d" })
            {
                await catalog.AddAsync(Entry(name));
            }
        }

        var bytes = await File.ReadAllBytesAsync(CatalogFile);
        bytes[(bytes.Length / 4) + 10] ^= 0xFF;
        await File.WriteAllBytesAsync(CatalogFile, bytes);

        using (var reopened = TopicCatalog.Open(_directory, _ => [Entry("b"), Entry("c"), Entry("d")], out var entries, out var recovered))
        {
            entries.Select(entry => entry.Name).ShouldBe(["a", "b", "c", "d"]);
            recovered.ShouldNotBeNull().ShouldContain("damaged");
        }

        using var rewritten = TopicCatalog.Open(_directory, _ => [], out var after, out var clean);
        after.Select(entry => entry.Name).ShouldBe(["a", "b", "c", "d"], "the catalog was rewritten whole");
        clean.ShouldBeNull();
    }

    [Fact]
    public void Without_a_catalog_the_topics_are_found_in_their_folders()
    {
        using var catalog = TopicCatalog.Open(_directory, _ => [Entry("x"), Entry("y")], out var entries, out var recovered);

        entries.Select(entry => entry.Name).ShouldBe(["x", "y"]);
        recovered.ShouldNotBeNull().ShouldContain("no catalog");
        File.Exists(CatalogFile).ShouldBeTrue();
    }

    [Fact]
    public async Task Latest_value_settings_are_read_back_beside_entries_without_them()
    {
        using (var catalog = TopicCatalog.Open(_directory, _ => [], out _, out _))
        {
            await catalog.AddAsync(Entry("plain"));
            await catalog.AddAsync(Entry("latest") with { KeepLatestPerKey = true, TombstoneRetentionMs = 86_400_000 });
            await catalog.AddAsync(Entry("limited") with { MaxMessages = 10 });
        }

        using var reopened = TopicCatalog.Open(_directory, _ => [], out var entries, out var recovered);

        recovered.ShouldBeNull();
        entries.ShouldBe([Entry("plain"), Entry("latest") with { KeepLatestPerKey = true, TombstoneRetentionMs = 86_400_000 }, Entry("limited") with { MaxMessages = 10 }]);
    }

    private static CatalogEntry Entry(string name) => new(name, 60_000, 0, 2, 100);
}
