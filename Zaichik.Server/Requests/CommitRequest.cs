using Zaichik.Protocol;
using Zaichik.Server.Subscriptions;

namespace Zaichik.Server.Requests;

/// <summary>Commit and Nack: move a subscription's window and, for a durable consumer or a group, its stored state.</summary>
internal sealed partial class ConnectionRequests
{
    public void Commit(CommitFrame commit)
    {
        if (commit.Topic is null)
        {
            foreach (var subscription in _subscriptions.Values)
            {
                subscription.CommitAll();
            }

            return;
        }

        if (Target(commit.Topic, "Commit") is not { } target)
        {
            return;
        }

        if (!commit.Single)
        {
            target.CommitUpTo(commit.Sequence);
        }
        else if (!target.Redelivers)
        {
            Reply(new ErrorFrame(null, ErrorCode.InvalidArgument,
                $"a Commit of one sequence is for consumer group members and subscriptions with AckWait or MaxDeliver; the subscription to '{commit.Topic}' commits up to a sequence"));
        }
        else
        {
            target.CommitOne(commit.Sequence);
        }
    }

    public void Nack(NackFrame nack)
    {
        if (Target(nack.Topic, "Nack") is not { } target)
        {
            return;
        }

        if (!target.Redelivers)
        {
            Reply(new ErrorFrame(null, ErrorCode.InvalidArgument,
                $"Nack is for consumer group members and subscriptions with AckWait or MaxDeliver; the subscription to '{nack.Topic}' is neither"));
        }
        else if (!target.Nack(nack.Sequence, nack.DelayMs))
        {
            Reply(new ErrorFrame(null, ErrorCode.InvalidArgument, $"Nack names {nack.Topic}@{nack.Sequence}, which is not in flight to this member (committed, timed out, or never delivered to it)"));
        }
    }

    /// <summary>The subscription a Commit or Nack names; null (and an Error sent) when there is none or it takes no acks.</summary>
    private Subscription? Target(string topic, string frame)
    {
        if (!_subscriptions.TryGetValue(topic, out var target))
        {
            Reply(new ErrorFrame(null, ErrorCode.NotSubscribed, $"{frame} names '{topic}', which this connection does not subscribe to"));
            return null;
        }

        if (target.AckPolicy == AckPolicy.None)
        {
            Reply(new ErrorFrame(null, ErrorCode.InvalidArgument, $"the subscription to '{topic}' has AckPolicy None: there is nothing to {frame.ToLowerInvariant()}"));
            return null;
        }

        return target;
    }
}
