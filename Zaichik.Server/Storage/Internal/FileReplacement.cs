namespace Zaichik.Server.Storage.Internal;

/// <summary>Replaces a small file whole, so that a crash leaves the old one or the new one, never a mix.</summary>
internal static class FileReplacement
{
    /// <summary>
    /// Writes <paramref name="bytes"/> to <c>path.tmp</c>, flushes it to disk, renames it over <paramref name="path"/>
    /// and flushes the folder, so the new name is durable too.
    /// </summary>
    /// <exception cref="IOException">A step failed; the old file is whole (a <c>.tmp</c> may be left, written over next time).</exception>
    public static void Replace(string path, ReadOnlySpan<byte> bytes)
    {
        var temporary = path + ".tmp";
        using (var file = File.Create(temporary))
        {
            file.Write(bytes);
            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
        DirectorySync.Flush(Path.GetDirectoryName(path)!);
    }
}
