using Zaichik.Server.Storage;

namespace Zaichik.Tests.Storage;

public sealed class DataFolderLockTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "zaichik-lock-" + Guid.NewGuid().ToString("N"));

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void A_folder_is_locked_once_names_its_holder_and_is_free_again_when_released()
    {
        var first = DataFolderLock.Acquire(_directory);

        var error = Should.Throw<DataFolderInUseException>(() => DataFolderLock.Acquire(_directory));
        error.HolderPid.ShouldBe(Environment.ProcessId);
        error.Message.ShouldContain(Path.GetFullPath(_directory));

        first.Dispose();
        using var again = DataFolderLock.Acquire(_directory);
        Should.Throw<DataFolderInUseException>(() => DataFolderLock.Acquire(_directory)).HolderPid.ShouldBe(Environment.ProcessId, "the lock file names the new holder");
    }
}
