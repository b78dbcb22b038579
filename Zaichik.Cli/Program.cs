using Zaichik.Cli;

using var interrupted = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // The first Ctrl+C ends the verb cleanly (sub exits 0); a second one kills the process as usual.
    if (!interrupted.IsCancellationRequested)
    {
        e.Cancel = true;
        interrupted.Cancel();
    }
};

return await ZaichikCli.RunAsync(args, Console.Out, Console.Error, interrupted.Token);
