using System.Runtime.InteropServices;

namespace Zaichik.Server.Storage.Internal;

/// <summary>What a path names, without following a symbolic link and without opening it.</summary>
internal enum FileKind
{
    Missing,
    File,
    Directory,
    Fifo,
    Socket,
    CharacterDevice,
    BlockDevice,
    SymbolicLink,
    Unknown,
}

/// <summary>
/// Finds out what kind of file a path is before the storage layer opens it. Opening a fifo blocks, a directory or a
/// socket fails with a misleading message, and a device reads as zeros forever; each must instead quarantine its topic
/// with a clear reason. On Linux this is <c>statx</c>, whose layout is the same on every architecture; elsewhere only
/// files, directories and missing paths are told apart.
/// </summary>
internal static partial class FileKinds
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x0001;
    private const int StatxBufferSize = 256;
    private const int ModeOffset = 28;
    private const int NoEntry = 2;
    private const int NotDirectory = 20;

    public static FileKind Of(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return Directory.Exists(path) ? FileKind.Directory : File.Exists(path) ? FileKind.File : FileKind.Missing;
        }

        Span<byte> buffer = stackalloc byte[StatxBufferSize];
        if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return errno is NoEntry or NotDirectory ? FileKind.Missing : FileKind.Unknown;
        }

        var mode = BitConverter.ToUInt16(buffer[ModeOffset..]);
        return (mode & 0xF000) switch
        {
            0x8000 => FileKind.File,
            0x4000 => FileKind.Directory,
            0x1000 => FileKind.Fifo,
            0xC000 => FileKind.Socket,
            0x2000 => FileKind.CharacterDevice,
            0x6000 => FileKind.BlockDevice,
            0xA000 => FileKind.SymbolicLink,
            _ => FileKind.Unknown,
        };
    }

    /// <summary>Throws <see cref="WrongFileKindException"/> unless <paramref name="path"/> is a regular file or missing.</summary>
    public static void RequireFileOrMissing(string path)
    {
        var kind = Of(path);
        if (kind is not (FileKind.File or FileKind.Missing))
        {
            throw new WrongFileKindException(path, kind);
        }
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int directory, string path, int flags, uint mask, ref byte buffer);
}

/// <summary>A path where the storage layer needs a regular file names something else: the topic cannot be served.</summary>
internal sealed class WrongFileKindException(string path, FileKind kind)
    : IOException($"'{path}' is {Describe(kind)}, not a regular file")
{
    public string Path { get; } = path;

    public FileKind Kind { get; } = kind;

    private static string Describe(FileKind kind) => kind switch
    {
        FileKind.Directory => "a directory",
        FileKind.Fifo => "a fifo",
        FileKind.Socket => "a socket",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.SymbolicLink => "a symbolic link",
        _ => "of an unknown kind",
    };
}
