import {
  type KyselyPlugin,
  OperationNodeTransformer,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type PrimitiveValueListNode,
  type QueryResult,
  type RootOperationNode,
  type UnknownRow,
  type ValueNode,
} from "kysely";

/**
 * Refuses any query that binds a JS `Date`. On MySQL a Date would be written in the driver's zone, not in
 * `DATABASE_TIME_ZONE`, and would silently disagree with the Go producers' wall clock; every time must go
 * through `DbTraits.time` (db-traits.ts). Failing loudly turns a missed conversion into a test failure.
 */
export class DateParameterGuard implements KyselyPlugin {
  readonly #transformer = new RejectDates();

  transformQuery({ node }: PluginTransformQueryArgs): RootOperationNode {
    return this.#transformer.transformNode(node);
  }

  transformResult({ result }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return Promise.resolve(result);
  }
}

class RejectDates extends OperationNodeTransformer {
  protected override transformValue(node: ValueNode): ValueNode {
    rejectDate(node.value);
    return super.transformValue(node);
  }

  protected override transformPrimitiveValueList(node: PrimitiveValueListNode): PrimitiveValueListNode {
    for (const value of node.values) rejectDate(value);
    return super.transformPrimitiveValueList(node);
  }
}

function rejectDate(value: unknown): void {
  if (value instanceof Date) {
    throw new TypeError(
      `a Date was bound to a query (${value.toISOString()}): bind DbTraits.time(date), the database zone's wall clock`,
    );
  }
}
