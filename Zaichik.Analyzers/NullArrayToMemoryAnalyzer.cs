using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace Zaichik.Analyzers;

/// <summary>
/// ZK0001: <c>ReadOnlyMemory&lt;T&gt;</c> and <c>Memory&lt;T&gt;</c> convert implicitly from an array, and a null array
/// becomes an empty memory. Where a nullable memory means "none" (a message's key), that turns "no key" into "the
/// empty key": <c>hasKey ? key : null</c> with <c>key</c> a memory, or <c>Key = bytes?.ToArray()</c>, stores an empty
/// key. Reported where the converted array is the <c>null</c> literal or may be null; write
/// <c>(ReadOnlyMemory&lt;byte&gt;?)null</c>, <c>default</c>, or test for null first.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class NullArrayToMemoryAnalyzer : DiagnosticAnalyzer
{
    public const string Id = "ZK0001";

    private static readonly DiagnosticDescriptor Rule = new(
        Id,
        "A null array becomes an empty memory, not a null one",
        "'{0}' may be null here, and a null array converts to an empty {1}, not to null: cast null to the nullable memory type, use default, or test for null first",
        "Reliability",
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true);

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => ImmutableArray.Create(Rule);

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterOperationAction(Analyze, OperationKind.Conversion);
    }

    private static void Analyze(OperationAnalysisContext context)
    {
        var conversion = (IConversionOperation)context.Operation;
        if (conversion.OperatorMethod is not { Name: "op_Implicit" } method
            || method.Parameters.Length != 1
            || method.Parameters[0].Type is not IArrayTypeSymbol
            || method.ContainingType is not { Name: "ReadOnlyMemory" or "Memory", ContainingNamespace: { Name: "System", ContainingNamespace.IsGlobalNamespace: true } } memory)
        {
            return;
        }

        // Only where the memory ends up nullable, so that null would have meant "none": a null array that becomes an
        // empty ReadOnlyMemory<T> argument (empty headers, say) is what callers mean.
        if (!EndsNullable(conversion))
        {
            return;
        }

        var operand = conversion.Operand;
        while (operand is IConversionOperation { IsImplicit: true } inner)
        {
            operand = inner.Operand;
        }

        var mayBeNull = operand.ConstantValue is { HasValue: true, Value: null }
            || (operand.Syntax is { } syntax
                && conversion.SemanticModel?.GetTypeInfo(syntax, context.CancellationToken).Nullability.FlowState == NullableFlowState.MaybeNull);
        if (mayBeNull)
        {
            context.ReportDiagnostic(Diagnostic.Create(Rule, operand.Syntax.GetLocation(), operand.Syntax.ToString(), memory.Name));
        }
    }

    /// <summary>The conversion's result is a nullable memory, itself or through the conditionals it is a branch of.</summary>
    private static bool EndsNullable(IConversionOperation conversion)
    {
        IOperation current = conversion;
        while (true)
        {
            if (current is IConversionOperation { Type: INamedTypeSymbol { OriginalDefinition.SpecialType: SpecialType.System_Nullable_T } })
            {
                return true;
            }

            if (current.Parent is IConditionalOperation or IConversionOperation or ICoalesceOperation)
            {
                current = current.Parent;
                continue;
            }

            return false;
        }
    }
}
