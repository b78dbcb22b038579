using System.Runtime.CompilerServices;
using Zaichik.Client;

namespace Zaichik.Benchmarks;

/// <summary>
/// Keeps up to <see cref="Capacity"/> publishes in flight on one connection, as a ring of their tasks. A new
/// publish takes the slot of the oldest, waiting for it first only when the ring is full. Acks come back in
/// publish order on a connection, so the oldest is always the next to complete, and only it ever has a
/// continuation attached: the benchmark adds no allocation or wake-up per message of its own.
/// </summary>
internal sealed class PublishWindow(int capacity)
{
    private readonly ValueTask<PublishResult>[] _slots = new ValueTask<PublishResult>[capacity];
    private long _issued;
    private long _completed;

    public int Capacity => _slots.Length;

    public long Issued => _issued;

    /// <summary>Publishes the server stored.</summary>
    public long Accepted { get; private set; }

    /// <summary>Publishes the server dropped as repeats of a key within the compaction window.</summary>
    public long Duplicates { get; private set; }

    /// <summary>Acks saying the message (or, for a duplicate, the original) was already committed to disk.</summary>
    public long Durable { get; private set; }

    /// <summary>
    /// The slot the next publish goes into; its payload buffer (if the caller keeps one per slot) is free to
    /// reuse once this completes.
    /// </summary>
    public ValueTask<int> ReserveAsync() =>
        _issued - _completed < _slots.Length ? new ValueTask<int>(NextSlot) : ReserveAfterOldestAsync();

    /// <summary>Records a publish started in the slot <see cref="ReserveAsync"/> returned.</summary>
    public void Issue(int slot, ValueTask<PublishResult> publish)
    {
        _slots[slot] = publish;
        _issued++;
    }

    /// <summary>Waits for every publish still in flight.</summary>
    public async ValueTask DrainAsync()
    {
        while (_completed < _issued)
        {
            await CompleteOldestAsync();
        }
    }

    private int NextSlot => (int)(_issued % _slots.Length);

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReserveAfterOldestAsync()
    {
        await CompleteOldestAsync();
        return NextSlot;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask CompleteOldestAsync()
    {
        var slot = (int)(_completed % _slots.Length);
        var result = await _slots[slot];
        _slots[slot] = default;
        _completed++;
        if (result.Durable)
        {
            Durable++;
        }

        if (result.Duplicate)
        {
            Duplicates++;
        }
        else
        {
            Accepted++;
        }
    }
}
