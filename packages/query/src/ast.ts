import type { SqlType, Value } from '@veritydb/types';

/**
 * Our own immutable, `kind`-tagged statement and expression nodes. node-sql-parser's loose AST
 * is converted into these at the edge (parse.ts); everything after works only on these, with
 * exhaustive switches ending in `assertNever`, so a new kind nobody handles fails to compile.
 */

/** Which snapshot a table reference reads (DESIGN §8 History). */
export type AsOf =
  | { readonly kind: 'position'; readonly position: bigint }
  | { readonly kind: 'timestamp'; readonly timestampMicros: bigint };

export interface TableRef {
  readonly name: string;
  readonly alias: string | null;
  readonly asOf: AsOf | null;
}

/** How a literal was written: it decides its type (PostgreSQL literal typing). */
export type LiteralKind = 'integer' | 'decimal' | 'string' | 'boolean' | 'null';

export type Expr =
  | { readonly kind: 'literal'; readonly literal: LiteralKind; readonly value: Value }
  | { readonly kind: 'param'; readonly index: number }
  | { readonly kind: 'column'; readonly table: string | null; readonly name: string }
  | { readonly kind: 'unary'; readonly op: '-' | '+' | 'NOT'; readonly operand: Expr }
  | { readonly kind: 'binary'; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr }
  | { readonly kind: 'isNull'; readonly negated: boolean; readonly operand: Expr }
  | { readonly kind: 'isBool'; readonly negated: boolean; readonly value: boolean; readonly operand: Expr }
  | { readonly kind: 'in'; readonly negated: boolean; readonly operand: Expr; readonly list: readonly Expr[] }
  | { readonly kind: 'between'; readonly negated: boolean; readonly operand: Expr; readonly low: Expr; readonly high: Expr }
  | { readonly kind: 'like'; readonly negated: boolean; readonly caseInsensitive: boolean; readonly operand: Expr; readonly pattern: Expr }
  | { readonly kind: 'cast'; readonly operand: Expr; readonly type: SqlType }
  | { readonly kind: 'aggregate'; readonly fn: AggregateFn; readonly distinct: boolean; readonly arg: Expr | null };

export type BinaryOp = '+' | '-' | '*' | '/' | '%' | '||' | '=' | '<>' | '<' | '<=' | '>' | '>=' | 'AND' | 'OR';
export type AggregateFn = 'COUNT' | 'SUM' | 'MIN' | 'MAX' | 'AVG';

export interface SelectItem {
  readonly kind: 'star' | 'expr';
  readonly expr: Expr | null;
  readonly alias: string | null;
  /** The text PostgreSQL would name the column by when there is no alias. */
  readonly defaultName: string;
}

export interface OrderItem {
  readonly expr: Expr;
  readonly descending: boolean;
  /** Explicit NULLS FIRST/LAST, or null for PostgreSQL's default (LAST for ASC, FIRST for DESC). */
  readonly nullsFirst: boolean | null;
}

export interface Assignment {
  readonly column: string;
  /** 'default' for `SET c = DEFAULT`. */
  readonly value: Expr | 'default';
}

export interface ColumnSpec {
  readonly name: string;
  readonly type: SqlType;
  readonly notNull: boolean;
  readonly primaryKey: boolean;
  readonly unique: boolean;
  readonly default: Expr | null;
}

export type OnConflict =
  | { readonly action: 'nothing'; readonly target: readonly string[] | null }
  | { readonly action: 'update'; readonly target: readonly string[]; readonly set: readonly Assignment[]; readonly where: Expr | null };

export interface SelectStatement {
  readonly kind: 'select';
  readonly from: TableRef | null;
  readonly distinct: boolean;
  readonly items: readonly SelectItem[];
  readonly where: Expr | null;
  readonly groupBy: readonly Expr[];
  readonly orderBy: readonly OrderItem[];
  readonly limit: Expr | null;
  readonly offset: Expr | null;
}

/** One table of a projection's FROM clause: the first has no join, the others join an
 * earlier one (`INNER`/`LEFT`) on `on`. */
export interface ProjectionSource {
  readonly ref: TableRef;
  readonly join: 'inner' | 'left' | null;
  readonly on: Expr | null;
}

/** `CREATE PROJECTION name AS SELECT …`: `sql` is the whole statement text, kept in the catalog. */
export interface CreateProjectionStatement {
  readonly kind: 'createProjection';
  readonly name: string;
  readonly sql: string;
  readonly from: readonly ProjectionSource[];
  readonly items: readonly SelectItem[];
  readonly where: Expr | null;
  readonly groupBy: readonly Expr[];
}

export type Statement =
  | SelectStatement
  | { readonly kind: 'explain'; readonly select: SelectStatement }
  | {
      readonly kind: 'insert'; readonly table: TableRef; readonly columns: readonly string[] | null;
      readonly rows: readonly (readonly (Expr | 'default')[])[]; readonly onConflict: OnConflict | null;
      readonly returning: readonly SelectItem[];
    }
  | {
      readonly kind: 'update'; readonly table: TableRef; readonly set: readonly Assignment[];
      readonly where: Expr | null; readonly returning: readonly SelectItem[];
    }
  | { readonly kind: 'delete'; readonly table: TableRef; readonly where: Expr | null; readonly returning: readonly SelectItem[] }
  | {
      readonly kind: 'createTable'; readonly name: string; readonly ifNotExists: boolean;
      readonly columns: readonly ColumnSpec[]; readonly primaryKey: readonly string[] | null;
      readonly uniques: readonly (readonly string[])[];
    }
  | { readonly kind: 'dropTable'; readonly names: readonly string[]; readonly ifExists: boolean }
  | {
      readonly kind: 'createIndex'; readonly name: string; readonly table: string; readonly columns: readonly string[];
      readonly unique: boolean; readonly ifNotExists: boolean;
    }
  | { readonly kind: 'dropIndex'; readonly name: string; readonly ifExists: boolean }
  | { readonly kind: 'addColumn'; readonly table: string; readonly column: ColumnSpec }
  | { readonly kind: 'dropColumn'; readonly table: string; readonly column: string; readonly ifExists: boolean }
  | { readonly kind: 'showTables' }
  | CreateProjectionStatement
  | { readonly kind: 'dropProjection'; readonly name: string; readonly ifExists: boolean }
  | { readonly kind: 'showProjections' }
  | { readonly kind: 'describe'; readonly table: string };

export type StatementKind = Statement['kind'];
