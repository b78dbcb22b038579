using Zaichik.Protocol;

namespace Zaichik.Server.Requests;

/// <summary>Commit: moves a subscription's window and, for a durable consumer, its stored position.</summary>
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

        if (_subscriptions.TryGetValue(commit.Topic, out var target) && target.AckPolicy == AckPolicy.None)
        {
            Reply(new ErrorFrame(null, ErrorCode.InvalidArgument, $"the subscription to '{commit.Topic}' has AckPolicy None: there is nothing to commit"));
        }
        else if (target is not null)
        {
            target.CommitUpTo(commit.Sequence);
        }
        else
        {
            Reply(new ErrorFrame(null, ErrorCode.NotSubscribed, $"Commit names '{commit.Topic}', which this connection does not subscribe to"));
        }
    }
}
