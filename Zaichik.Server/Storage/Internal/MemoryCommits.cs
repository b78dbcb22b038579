using FASTER.core;

namespace Zaichik.Server.Storage.Internal;

/// <summary>Commit records of a Memory topic's log: kept in memory only, because such a topic writes nothing to disk.</summary>
internal sealed class MemoryCommits : ILogCommitManager
{
    private readonly Lock _lock = new();
    private (long CommitNum, byte[] Metadata)? _latest;

    public void Commit(long beginAddress, long untilAddress, byte[] commitMetadata, long commitNum, bool forceWriteMetadata)
    {
        lock (_lock)
        {
            _latest = (commitNum, commitMetadata);
        }
    }

    public byte[] GetCommitMetadata(long commitNum)
    {
        lock (_lock)
        {
            return _latest is { } latest && latest.CommitNum == commitNum ? latest.Metadata : null!;
        }
    }

    public IEnumerable<long> ListCommits()
    {
        lock (_lock)
        {
            return _latest is { } latest ? [latest.CommitNum] : [];
        }
    }

    public void RemoveCommit(long commitNum)
    {
    }

    public void RemoveAllCommits()
    {
        lock (_lock)
        {
            _latest = null;
        }
    }

    public void OnRecovery(long commitNum)
    {
    }

    public void Dispose()
    {
    }
}
