/**
 * Generators of SQL test cases inside the DESIGN §8 subset, for the differential test against
 * PostgreSQL. A case is a small schema plus a history of statements; it is generated as a typed
 * model and rendered to SQL text once per dialect (only DDL type names differ between dialects).
 *
 * Values are drawn from small per-type domains by index, so keys collide often (duplicate keys,
 * ON CONFLICT paths, GROUP BY groups) and shrinking moves towards the simplest value.
 *
 * @example
 *   const [c] = fc.sample(caseArb(), { seed: 1, numRuns: 1 });
 *   const script = renderCase(c!, 'postgres');
 */
import fc from 'fast-check';

export const COLUMN_TYPES = ['BIGINT', 'INTEGER', 'TEXT', 'BOOLEAN', 'DOUBLE', 'DATE', 'TIMESTAMP', 'BYTES'] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

export type Dialect = 'postgres' | 'verity';

/** DDL type names per dialect: PostgreSQL has no `DOUBLE` or `BYTES` (VerityDB's pre-pass maps
 * them to `DOUBLE PRECISION` and `BYTEA` for node-sql-parser); the other names are shared. */
const TYPE_NAMES: Readonly<Record<Dialect, Readonly<Record<ColumnType, string>>>> = {
  postgres: {
    BIGINT: 'BIGINT', INTEGER: 'INTEGER', TEXT: 'TEXT', BOOLEAN: 'BOOLEAN', DOUBLE: 'DOUBLE PRECISION',
    DATE: 'DATE', TIMESTAMP: 'TIMESTAMP', BYTES: 'BYTEA',
  },
  verity: {
    BIGINT: 'BIGINT', INTEGER: 'INTEGER', TEXT: 'TEXT', BOOLEAN: 'BOOLEAN', DOUBLE: 'DOUBLE',
    DATE: 'DATE', TIMESTAMP: 'TIMESTAMP', BYTES: 'BYTES',
  },
};

// ---------------------------------------------------------------------------------------------
// Value domains

// Extremes: PostgreSQL reads `-2147483648` as a negated BIGINT and `-9223372036854775808` as a
// negated NUMERIC, so the domains stop one short of the minimum to keep literal types simple.
const INTEGER_DOMAIN: readonly number[] = [0, 1, 2, -1, 3, 5, 7, 10, -3, 42, 100, -100, 2147483647, -2147483647];
const BIGINT_DOMAIN: readonly bigint[] = [
  0n, 1n, 2n, -1n, 3n, 5n, 7n, 10n, -3n, 42n, 100n, 4294967296n, 9007199254740993n,
  9223372036854775807n, -9223372036854775807n,
];
const DOUBLE_DOMAIN: readonly number[] = [0, 1.5, -2.25, 0.1, 3, 2.5, -0.5, 1e10, 123.456, 1e-7, -1e15];
const TEXT_DOMAIN: readonly string[] = ['a', 'b', '', 'ab', 'A', 'abc', 'b%c', "it's", 'ä', 'a_c', ' a', 'zz', 'B'];
const DATE_DOMAIN: readonly string[] = [
  '2024-01-01', '2023-12-31', '1970-01-01', '2000-02-29', '2024-03-15', '1969-07-20', '2099-12-31',
];
const TIMESTAMP_DOMAIN: readonly string[] = [
  '2024-01-01 00:00:00', '2024-01-01 12:30:45.123456', '1970-01-01 00:00:00', '2000-02-29 08:00:00.5',
  '1969-12-31 23:59:59.999999', '2024-01-01 00:00:00.000001', '2038-01-19 03:14:08',
];
const BYTES_DOMAIN: readonly (readonly number[])[] = [[1, 2], [], [0], [255], [1, 2, 3], [0, 0], [1]];
const BOOLEAN_DOMAIN: readonly boolean[] = [false, true];

/** A value of a column type: the JavaScript form used for parameters and for rendering. */
export type SqlValue = null | number | bigint | string | boolean | Uint8Array;

function domainSize(type: ColumnType): number {
  switch (type) {
    case 'BIGINT': return BIGINT_DOMAIN.length;
    case 'INTEGER': return INTEGER_DOMAIN.length;
    case 'TEXT': return TEXT_DOMAIN.length;
    case 'BOOLEAN': return BOOLEAN_DOMAIN.length;
    case 'DOUBLE': return DOUBLE_DOMAIN.length;
    case 'DATE': return DATE_DOMAIN.length;
    case 'TIMESTAMP': return TIMESTAMP_DOMAIN.length;
    case 'BYTES': return BYTES_DOMAIN.length;
  }
}

/** The value with index `seed` (modulo the domain) in the domain of `type`. */
export function domainValue(type: ColumnType, seed: number): Exclude<SqlValue, null> {
  const i = seed % domainSize(type);
  switch (type) {
    case 'BIGINT': return BIGINT_DOMAIN[i] as bigint;
    case 'INTEGER': return INTEGER_DOMAIN[i] as number;
    case 'TEXT': return TEXT_DOMAIN[i] as string;
    case 'BOOLEAN': return BOOLEAN_DOMAIN[i] as boolean;
    case 'DOUBLE': return DOUBLE_DOMAIN[i] as number;
    case 'DATE': return DATE_DOMAIN[i] as string;
    case 'TIMESTAMP': return TIMESTAMP_DOMAIN[i] as string;
    case 'BYTES': return Uint8Array.from(BYTES_DOMAIN[i] as number[]);
  }
}

// ---------------------------------------------------------------------------------------------
// Model

export interface ColumnDef {
  readonly name: string;
  readonly type: ColumnType;
  readonly notNull: boolean;
  readonly unique: boolean;
  /** Seed of the DEFAULT literal, or null for no DEFAULT. */
  readonly defaultSeed: number | null;
}

export interface IndexDef {
  readonly name: string;
  readonly columns: readonly string[];
  readonly unique: boolean;
}

export interface TableDef {
  readonly name: string;
  /** Primary-key columns come first, in key order. */
  readonly columns: readonly ColumnDef[];
  readonly primaryKey: readonly string[];
  /** Composite or single keys may be written as a table constraint. */
  readonly tableLevelKey: boolean;
  readonly indexes: readonly IndexDef[];
}

export interface Schema {
  readonly tables: readonly TableDef[];
}

/** A constant: rendered as a literal, or passed as a `$n` parameter. */
export interface Constant {
  readonly kind: 'const';
  readonly type: ColumnType;
  readonly seed: number;
  readonly param: boolean;
  /** Literal spelling for DATE/TIMESTAMP: `'…'` or `DATE '…'`. */
  readonly typedLiteral: boolean;
}

/** Raw SQL text standing for a deliberately wrong value or name (must-fail statements). */
export interface RawSql {
  readonly kind: 'raw';
  readonly sql: string;
}

export type ArithOp = '+' | '-' | '*' | '/' | '%';
export type CompareOp = '=' | '<>' | '<' | '<=' | '>' | '>=';
export type AggregateFn = 'COUNT' | 'SUM' | 'MIN' | 'MAX' | 'AVG';

export type Expr =
  | Constant
  | RawSql
  | { readonly kind: 'null' }
  | { readonly kind: 'column'; readonly name: string; readonly qualifier?: string }
  | { readonly kind: 'arith'; readonly op: ArithOp; readonly left: Expr; readonly right: Expr }
  | { readonly kind: 'negate'; readonly operand: Expr }
  | { readonly kind: 'concat'; readonly left: Expr; readonly right: Expr }
  | { readonly kind: 'compare'; readonly op: CompareOp; readonly left: Expr; readonly right: Expr }
  | { readonly kind: 'logic'; readonly op: 'AND' | 'OR'; readonly left: Expr; readonly right: Expr }
  | { readonly kind: 'not'; readonly operand: Expr }
  | { readonly kind: 'isNull'; readonly negated: boolean; readonly operand: Expr }
  | { readonly kind: 'in'; readonly negated: boolean; readonly operand: Expr; readonly list: readonly Expr[] }
  | { readonly kind: 'between'; readonly negated: boolean; readonly operand: Expr; readonly low: Expr; readonly high: Expr }
  | { readonly kind: 'like'; readonly negated: boolean; readonly operand: Expr; readonly pattern: string }
  | { readonly kind: 'aggregate'; readonly fn: AggregateFn; readonly argument: Expr | null };

export interface SelectItem {
  readonly expr: Expr;
  readonly alias: string | null;
}

export interface OrderKey {
  /** A column name, an output alias, or a 1-based output position. */
  readonly ref: string | number;
  readonly descending: boolean;
  /** Explicit NULLS FIRST/LAST, or null for the default (NULLs sort as if larger than any value). */
  readonly nulls: 'FIRST' | 'LAST' | null;
}

/** How a SELECT's rows may be compared: `total` = the ORDER BY fixes the row order; `keys` = the
 * ORDER BY keys are output columns `keyOutputs`, so their sequence is fixed but ties may come in
 * any order; `none` = a multiset. */
export type RowOrder =
  | { readonly kind: 'total' }
  | { readonly kind: 'keys'; readonly keys: readonly { readonly output: number; readonly descending: boolean }[] }
  | { readonly kind: 'none' };

/** What the generator knows about a statement's outcome: PostgreSQL must agree (self-check). */
export type Expectation = 'ok' | 'error' | 'either';

export interface InsertStmt {
  readonly kind: 'insert';
  readonly table: string;
  /** null: no column list (values for every column, in table order). */
  readonly columns: readonly string[] | null;
  readonly rows: readonly (readonly Expr[])[];
  readonly onConflict:
    | null
    | { readonly action: 'nothing'; readonly target: readonly string[] | null }
    | { readonly action: 'update'; readonly target: readonly string[]; readonly set: readonly (readonly [string, Expr])[] };
  readonly returning: readonly SelectItem[] | null;
  readonly expect: Expectation;
}

export interface UpdateStmt {
  readonly kind: 'update';
  readonly table: string;
  readonly set: readonly (readonly [string, Expr])[];
  readonly where: Expr | null;
  readonly returning: readonly SelectItem[] | null;
  readonly expect: Expectation;
}

export interface DeleteStmt {
  readonly kind: 'delete';
  readonly table: string;
  readonly where: Expr | null;
  readonly returning: readonly SelectItem[] | null;
  readonly expect: Expectation;
}

export interface SelectStmt {
  readonly kind: 'select';
  readonly table: string;
  readonly distinct: boolean;
  /** null: `SELECT *`. */
  readonly items: readonly SelectItem[] | null;
  readonly where: Expr | null;
  readonly groupBy: readonly string[];
  readonly orderBy: readonly OrderKey[];
  readonly limit: number | null;
  readonly offset: number | null;
  readonly order: RowOrder;
  readonly expect: Expectation;
}

export type Statement = InsertStmt | UpdateStmt | DeleteStmt | SelectStmt;

export interface TestCase {
  readonly schema: Schema;
  readonly statements: readonly Statement[];
  /** Consecutive writes sent together as one atomic batch (`Tenant.batch`; in PostgreSQL one
   * transaction): sizes of the groups, in order. Reads and groups of one run alone. */
  readonly groupSizes: readonly number[];
}

/** The case's statements split into steps: single statements and atomic batches of writes. */
export function stepsOf(testCase: TestCase): Statement[][] {
  const steps: Statement[][] = [];
  let next = 0;
  let group = 0;
  while (next < testCase.statements.length) {
    const size = Math.max(1, testCase.groupSizes[group++] ?? 1);
    const taken = testCase.statements.slice(next, next + size);
    if (taken.length > 1 && taken.every((st) => st.kind !== 'select')) {
      steps.push(taken);
    } else {
      for (const st of taken) steps.push([st]);
    }
    next += taken.length;
  }
  return steps;
}

/** One statement as text plus parameters, and whether it reads (`query`) or writes (`execute`). */
export interface RenderedStatement {
  readonly sql: string;
  readonly params: readonly SqlValue[];
  readonly mode: 'query' | 'execute';
  readonly expect: Expectation;
}

// ---------------------------------------------------------------------------------------------
// Typing of the model (enough to generate well-typed SQL and to know where errors are possible)

const NUMERIC_TYPES: readonly ColumnType[] = ['BIGINT', 'INTEGER', 'DOUBLE'];
const ORDERED_TYPES: readonly ColumnType[] = ['BIGINT', 'INTEGER', 'DOUBLE', 'TEXT', 'DATE', 'TIMESTAMP'];
const KEY_TYPES: readonly ColumnType[] = ['BIGINT', 'INTEGER', 'TEXT', 'DATE', 'TIMESTAMP', 'BYTES', 'BOOLEAN'];

// ---------------------------------------------------------------------------------------------
// Schema arbitraries

const seedArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 4, arbitrary: fc.nat({ max: 4 }) },
  { weight: 1, arbitrary: fc.nat({ max: 20 }) },
);

function columnArb(name: string, isKey: boolean): fc.Arbitrary<ColumnDef> {
  const typeArb = isKey
    ? fc.oneof({ weight: 4, arbitrary: fc.constantFrom<ColumnType>('BIGINT', 'INTEGER', 'TEXT') }, { weight: 1, arbitrary: fc.constantFrom(...KEY_TYPES) })
    : fc.constantFrom(...COLUMN_TYPES);
  return typeArb.chain((type) => fc.record({
    name: fc.constant(name),
    type: fc.constant(type),
    notNull: isKey ? fc.constant(true) : fc.oneof({ weight: 2, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    unique: isKey ? fc.constant(false) : fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    defaultSeed: isKey || type === 'BYTES'
      ? fc.constant(null)
      : fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: seedArb }),
  }));
}

function tableArb(tableIndex: number): fc.Arbitrary<TableDef> {
  const name = `t${tableIndex}`;
  return fc.record({
    keyColumns: fc.oneof({ weight: 3, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(2) }),
    otherColumns: fc.integer({ min: 1, max: 4 }),
    tableLevelKey: fc.boolean(),
  }).chain(({ keyColumns, otherColumns, tableLevelKey }) => {
    const keys = Array.from({ length: keyColumns }, (_, i) => columnArb(`k${i}`, true));
    const others = Array.from({ length: otherColumns }, (_, i) => columnArb(`c${i}`, false));
    return fc.tuple(fc.tuple(...keys), fc.tuple(...others)).chain(([keyDefs, otherDefs]) => {
      const columns: ColumnDef[] = [...keyDefs, ...otherDefs];
      const indexable = columns.map((c) => c.name);
      const indexArb = fc.record({
        columns: fc.shuffledSubarray(indexable, { minLength: 1, maxLength: Math.min(2, indexable.length) }),
        unique: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      });
      return fc.array(indexArb, { maxLength: 2 }).map((indexes): TableDef => ({
        name,
        columns,
        primaryKey: keyDefs.map((c) => c.name),
        tableLevelKey: keyColumns > 1 || tableLevelKey,
        indexes: indexes.map((ix, i) => ({ name: `${name}_ix${i}`, columns: ix.columns, unique: ix.unique })),
      }));
    });
  });
}

export function schemaArb(): fc.Arbitrary<Schema> {
  // Every table costs PostgreSQL several relation files: mostly one or two tables.
  const countArb = fc.oneof({ weight: 3, arbitrary: fc.constant(1) }, { weight: 2, arbitrary: fc.constant(2) }, { weight: 1, arbitrary: fc.constant(3) });
  return countArb.chain((count) =>
    fc.tuple(...Array.from({ length: count }, (_, i) => tableArb(i))).map((tables) => ({ tables })));
}

// ---------------------------------------------------------------------------------------------
// Expression arbitraries (typed by construction)

/** A constant of `type`. Parameters only where the statement fixes their type (a value for a
 * column, a comparison with a column): PostgreSQL types a lone `$1` as text. */
function constantArb(type: ColumnType, allowParam = true): fc.Arbitrary<Constant> {
  return fc.record({
    kind: fc.constant('const' as const),
    type: fc.constant(type),
    seed: seedArb,
    // BYTES have no literal both dialects read the same way: always a parameter.
    param: type === 'BYTES' ? fc.constant(true) : allowParam
      ? fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) })
      : fc.constant(false),
    typedLiteral: fc.boolean(),
  });
}

/** Key columns draw from a wider part of their domain, so that inserts mostly succeed. */
const keySeedArb: fc.Arbitrary<number> = fc.oneof({ weight: 3, arbitrary: fc.nat({ max: 11 }) }, { weight: 1, arbitrary: seedArb });

function valueArb(column: ColumnDef, isKey = false): fc.Arbitrary<Expr> {
  const constant = isKey ? constantArb(column.type).chain((c) => keySeedArb.map((seed): Constant => ({ ...c, seed }))) : constantArb(column.type);
  return fc.oneof(
    { weight: column.notNull ? 200 : 10, arbitrary: constant },
    { weight: column.notNull ? 1 : 2, arbitrary: fc.constant<Expr>({ kind: 'null' }) },
  );
}

/** The expression with every column reference qualified by `table` (PostgreSQL calls a bare
 * column ambiguous in ON CONFLICT DO UPDATE, where EXCLUDED has the same columns). */
function qualify(expr: Expr, table: string): Expr {
  switch (expr.kind) {
    case 'const': case 'raw': case 'null': case 'aggregate': return expr;
    case 'column': return expr.qualifier === undefined ? { ...expr, qualifier: table } : expr;
    case 'arith': case 'concat': case 'compare': case 'logic':
      return { ...expr, left: qualify(expr.left, table), right: qualify(expr.right, table) };
    case 'negate': case 'not': case 'isNull': case 'like':
      return { ...expr, operand: qualify(expr.operand, table) };
    case 'in': return { ...expr, operand: qualify(expr.operand, table), list: expr.list.map((e) => qualify(e, table)) };
    case 'between':
      return { ...expr, operand: qualify(expr.operand, table), low: qualify(expr.low, table), high: qualify(expr.high, table) };
  }
}

function columnsOfType(table: TableDef, types: readonly ColumnType[]): ColumnDef[] {
  return table.columns.filter((c) => types.includes(c.type));
}

/** An expression of the given type over the table's columns. `risky` reports via the result
 * whether it may fail at run time (division, integer overflow). */
function typedExprArb(table: TableDef, type: ColumnType, depth: number): fc.Arbitrary<Expr> {
  const columns = columnsOfType(table, [type]);
  const leaves: fc.WeightedArbitrary<Expr>[] = [{ weight: 2, arbitrary: constantArb(type, false) }];
  if (columns.length > 0) leaves.push({ weight: 5, arbitrary: fc.constantFrom(...columns).map((c): Expr => ({ kind: 'column', name: c.name })) });
  if (depth <= 0) return fc.oneof(...leaves);
  const branches: fc.WeightedArbitrary<Expr>[] = [...leaves];
  if ((type === 'INTEGER' || type === 'BIGINT' || type === 'DOUBLE') && columns.length > 0) {
    const ops: ArithOp[] = type === 'DOUBLE' ? ['+', '-', '*', '/'] : ['+', '-', '*', '/', '%'];
    branches.push({
      weight: 2,
      // PostgreSQL folds constant subexpressions while planning, so `(2147483647 * 2)` fails even
      // on an empty table: arithmetic always involves a column.
      arbitrary: fc.record({
        kind: fc.constant('arith' as const),
        op: fc.constantFrom(...ops),
        left: typedExprArb(table, type, depth - 1),
        right: typedExprArb(table, type, depth - 1),
      }).filter((e) => hasColumn(e.left) || hasColumn(e.right)),
    });
    branches.push({ weight: 1, arbitrary: typedExprArb(table, type, depth - 1).map((operand): Expr => ({ kind: 'negate', operand })) });
  }
  if (type === 'TEXT') {
    branches.push({
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('concat' as const), left: typedExprArb(table, 'TEXT', depth - 1), right: typedExprArb(table, 'TEXT', depth - 1) }),
    });
  }
  if (type === 'BOOLEAN') return fc.oneof(...branches, { weight: 3, arbitrary: predicateArb(table, depth - 1) });
  return fc.oneof(...branches);
}

const LIKE_PATTERNS: readonly string[] = ['a%', '%b', '%', '_', 'a_c', '%a%', 'A%', 'ab', '', '_%', 'b%c'];

function hasColumn(expr: Expr): boolean {
  switch (expr.kind) {
    case 'column': return true;
    case 'const': case 'raw': case 'null': return false;
    case 'arith': case 'concat': case 'compare': case 'logic': return hasColumn(expr.left) || hasColumn(expr.right);
    case 'negate': case 'not': case 'isNull': case 'like': return hasColumn(expr.operand);
    case 'in': return hasColumn(expr.operand) || expr.list.some(hasColumn);
    case 'between': return hasColumn(expr.operand) || hasColumn(expr.low) || hasColumn(expr.high);
    case 'aggregate': return expr.argument !== null && hasColumn(expr.argument);
  }
}

/**
 * A boolean condition over the table's columns. Only with `allowRisky` may it contain
 * expressions that can fail at run time (overflow, division by zero), and then only outside
 * AND/OR: which rows and conjuncts get evaluated is the planner's choice in both engines, so an
 * error under a short-circuit is not a defined outcome.
 */
export function predicateArb(table: TableDef, depth: number, allowRisky = false): fc.Arbitrary<Expr> {
  const comparable = columnsOfType(table, [...ORDERED_TYPES, 'BOOLEAN', 'BYTES']);
  const ordered = columnsOfType(table, ORDERED_TYPES);
  const texts = columnsOfType(table, ['TEXT']);
  const booleans = columnsOfType(table, ['BOOLEAN']);
  const any = table.columns;
  const atoms: fc.WeightedArbitrary<Expr>[] = [];
  if (comparable.length > 0) {
    atoms.push({
      weight: 6,
      arbitrary: fc.constantFrom(...comparable).chain((c) => fc.record({
        kind: fc.constant('compare' as const),
        op: fc.constantFrom<CompareOp>('=', '<>', '<', '<=', '>', '>='),
        left: fc.constant<Expr>({ kind: 'column', name: c.name }),
        right: fc.oneof({ weight: 4, arbitrary: constantArb(c.type) }, { weight: 2, arbitrary: typedExprArb(table, c.type, allowRisky ? 1 : 0) }),
      })),
    });
    atoms.push({
      weight: 2,
      arbitrary: fc.constantFrom(...comparable).chain((c) => fc.record({
        kind: fc.constant('in' as const),
        negated: fc.boolean(),
        operand: fc.constant<Expr>({ kind: 'column', name: c.name }),
        list: fc.array(fc.oneof({ weight: 6, arbitrary: constantArb(c.type) }, { weight: 1, arbitrary: fc.constant<Expr>({ kind: 'null' }) }), { minLength: 1, maxLength: 4 }),
      })),
    });
  }
  if (ordered.length > 0) {
    atoms.push({
      weight: 2,
      arbitrary: fc.constantFrom(...ordered).chain((c) => fc.record({
        kind: fc.constant('between' as const),
        negated: fc.boolean(),
        operand: fc.constant<Expr>({ kind: 'column', name: c.name }),
        low: constantArb(c.type),
        high: constantArb(c.type),
      })),
    });
  }
  if (texts.length > 0) {
    atoms.push({
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('like' as const),
        negated: fc.boolean(),
        operand: fc.constantFrom(...texts).map((c): Expr => ({ kind: 'column', name: c.name })),
        pattern: fc.constantFrom(...LIKE_PATTERNS),
      }),
    });
  }
  if (booleans.length > 0) {
    atoms.push({ weight: 1, arbitrary: fc.constantFrom(...booleans).map((c): Expr => ({ kind: 'column', name: c.name })) });
  }
  atoms.push({
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('isNull' as const),
      negated: fc.boolean(),
      operand: fc.constantFrom(...any).map((c): Expr => ({ kind: 'column', name: c.name })),
    }),
  });
  if (depth <= 0) return fc.oneof(...atoms);
  const sub = predicateArb(table, depth - 1);
  return fc.oneof(
    ...atoms,
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('logic' as const), op: fc.constantFrom<'AND' | 'OR'>('AND', 'OR'), left: sub, right: sub }) },
    { weight: 1, arbitrary: predicateArb(table, depth - 1, allowRisky).map((operand): Expr => ({ kind: 'not', operand })) },
  );
}

/** Whether evaluating the expression may raise an error in PostgreSQL (overflow, division). */
export function mayFail(expr: Expr | null): boolean {
  if (expr === null) return false;
  switch (expr.kind) {
    case 'const': case 'null': case 'column': return false;
    case 'raw': return true;
    case 'arith': return true;
    case 'negate': return true;
    case 'concat': return mayFail(expr.left) || mayFail(expr.right);
    case 'compare': return mayFail(expr.left) || mayFail(expr.right);
    case 'logic': return mayFail(expr.left) || mayFail(expr.right);
    case 'not': return mayFail(expr.operand);
    case 'isNull': return mayFail(expr.operand);
    case 'in': return mayFail(expr.operand) || expr.list.some(mayFail);
    case 'between': return mayFail(expr.operand) || mayFail(expr.low) || mayFail(expr.high);
    case 'like': return mayFail(expr.operand);
    // SUM over BIGINT is NUMERIC in PostgreSQL and cannot overflow; SUM over INTEGER is BIGINT.
    case 'aggregate': return expr.argument !== null && mayFail(expr.argument);
  }
}

// ---------------------------------------------------------------------------------------------
// Deliberately wrong inputs: each must fail in both engines

/** Raw SQL of a value that is wrong for a column of `type` (PostgreSQL rejects it): assigned to
 * the column, or compared with it (out-of-range numbers are only wrong when assigned). */
function wrongValueArb(type: ColumnType, context: 'assign' | 'compare'): fc.Arbitrary<RawSql> {
  // A quoted string is valid BYTEA input, so BYTES get no string.
  const options: string[] = type === 'BYTES' ? [] : ["'abc'"];
  switch (type) {
    case 'INTEGER': options.push('TRUE', "DATE '2024-01-01'", ...(context === 'assign' ? ['2147483648'] : [])); break;
    case 'BIGINT': options.push('TRUE', ...(context === 'assign' ? ['9223372036854775808'] : [])); break;
    case 'DOUBLE': options.push('TRUE'); break;
    // TEXT accepts any literal by assignment cast in PostgreSQL: no wrong value except a bad column.
    case 'TEXT': return fc.constant({ kind: 'raw', sql: 'no_such_column' });
    case 'BOOLEAN': options.push('1', '2.5'); break;
    case 'DATE': options.push('5', 'TRUE', "'2024-02-30'"); break;
    case 'TIMESTAMP': options.push('5', 'FALSE', "'2024-13-01 00:00:00'"); break;
    case 'BYTES': options.push('5', 'TRUE'); break;
  }
  return fc.constantFrom(...options).map((sql): RawSql => ({ kind: 'raw', sql }));
}

// ---------------------------------------------------------------------------------------------
// Statement arbitraries

function insertArb(table: TableDef): fc.Arbitrary<InsertStmt> {
  const nonKey = table.columns.filter((c) => !table.primaryKey.includes(c.name));
  const keyCols = table.columns.filter((c) => table.primaryKey.includes(c.name));
  const settable = nonKey.filter((c) => !c.unique);
  const listArb: fc.Arbitrary<readonly ColumnDef[] | null> = fc.oneof(
    { weight: 1, arbitrary: fc.constant(null) },
    {
      weight: 4,
      // Mostly name every NOT NULL column without a DEFAULT: omitting one is a sure failure.
      arbitrary: fc.tuple(fc.subarray(nonKey), fc.nat({ max: 9 })).chain(([picked, dice]) => {
        const required = dice === 0 ? [] : nonKey.filter((c) => c.notNull && c.defaultSeed === null && !picked.includes(c));
        const all = [...keyCols, ...picked, ...required];
        return fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length });
      }),
    },
  );
  return listArb.chain((list) => {
    const columns = list ?? table.columns;
    const keyLike = (c: ColumnDef): boolean => table.primaryKey.includes(c.name) || c.unique ||
      table.indexes.some((ix) => ix.unique && ix.columns.includes(c.name));
    const rowArb = fc.tuple(...columns.map((c) => valueArb(c, keyLike(c))));
    const conflictArb: fc.Arbitrary<InsertStmt['onConflict']> = fc.oneof(
      { weight: 5, arbitrary: fc.constant(null) },
      { weight: 2, arbitrary: fc.record({ action: fc.constant('nothing' as const), target: fc.option(fc.constant(table.primaryKey), { nil: null }) }) },
      ...(settable.length === 0 ? [] : [{
        weight: 2,
        arbitrary: fc.record({
          action: fc.constant('update' as const),
          target: fc.constant(table.primaryKey),
          set: fc.shuffledSubarray(settable, { minLength: 1, maxLength: Math.min(2, settable.length) }).chain((cols) =>
            fc.tuple(...cols.map((c) => fc.oneof(
              { weight: 3, arbitrary: fc.constant<Expr>({ kind: 'column', name: c.name, qualifier: 'EXCLUDED' }) },
              { weight: 2, arbitrary: typedExprArb(table, c.type, 1).map((e) => qualify(e, table.name)) },
              { weight: 1, arbitrary: valueArb(c) },
            ).map((e) => [c.name, e] as const)))),
        }),
      }]),
    );
    return fc.record({
      rows: fc.array(rowArb, { minLength: 1, maxLength: 4 }),
      onConflict: conflictArb,
      returning: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: returningArb(table) }),
    }).map(({ rows, onConflict, returning }): InsertStmt => ({
      kind: 'insert',
      table: table.name,
      columns: list === null ? null : list.map((c) => c.name),
      rows,
      onConflict,
      returning,
      expect: 'either',
    }));
  });
}

/** An INSERT that must fail: a wrong-typed value, an unknown column, or NULL in a NOT NULL column. */
function badInsertArb(table: TableDef): fc.Arbitrary<InsertStmt> {
  return fc.record({
    column: fc.constantFrom(...table.columns),
    fault: fc.constantFrom('type', 'unknownColumn', 'nullKey'),
    seed: seedArb,
  }).chain(({ column, fault, seed }) => {
    const key = table.columns.find((c) => c.name === table.primaryKey[0]) as ColumnDef;
    const row = table.columns.map((c): Expr => ({ kind: 'const', type: c.type, seed, param: c.type === 'BYTES', typedLiteral: false }));
    const names = table.columns.map((c) => c.name);
    switch (fault) {
      case 'unknownColumn':
        return fc.constant(insertOf(table, [...names, 'no_such_column'], [[...row, { kind: 'const', type: 'INTEGER', seed, param: false, typedLiteral: false }]]));
      case 'nullKey':
        return fc.constant(insertOf(table, names, [row.map((e, i) => table.columns[i]?.name === key.name ? { kind: 'null' } : e)]));
      case 'type':
        return wrongValueArb(column.type, 'assign').map((bad) =>
          insertOf(table, names, [row.map((e, i) => table.columns[i]?.name === column.name ? bad : e)]));
    }
  });
}

function insertOf(table: TableDef, columns: readonly string[], rows: readonly (readonly Expr[])[]): InsertStmt {
  return { kind: 'insert', table: table.name, columns, rows, onConflict: null, returning: null, expect: 'error' };
}

function returningArb(table: TableDef): fc.Arbitrary<readonly SelectItem[]> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant([{ expr: { kind: 'raw', sql: '*' }, alias: null }] as const) },
    { weight: 2, arbitrary: fc.shuffledSubarray([...table.columns], { minLength: 1 }).map((cols) => cols.map((c): SelectItem => ({ expr: { kind: 'column', name: c.name }, alias: null }))) },
  );
}

function setArb(table: TableDef): fc.Arbitrary<readonly (readonly [string, Expr])[]> {
  return fc.shuffledSubarray([...table.columns], { minLength: 1, maxLength: Math.min(2, table.columns.length) }).chain((cols) =>
    fc.tuple(...cols.map((c) => {
      const keyLike = table.primaryKey.includes(c.name) || c.unique || table.indexes.some((ix) => ix.unique && ix.columns.includes(c.name));
      // Keys and unique columns only get constants: PostgreSQL checks uniqueness row by row in
      // physical order, so `SET k = k + 1` may fail or not depending on heap order.
      const exprArb = keyLike ? valueArb(c) : fc.oneof({ weight: 2, arbitrary: typedExprArb(table, c.type, 2) }, { weight: 1, arbitrary: valueArb(c) });
      return exprArb.map((e) => [c.name, e] as const);
    })));
}

function updateArb(table: TableDef): fc.Arbitrary<UpdateStmt> {
  return fc.record({
    set: setArb(table),
    where: fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 4, arbitrary: predicateArb(table, 1, true) }),
    returning: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: returningArb(table) }),
  }).map((u): UpdateStmt => ({ kind: 'update', table: table.name, ...u, expect: 'either' }));
}

function badUpdateArb(table: TableDef): fc.Arbitrary<UpdateStmt> {
  return fc.record({
    column: fc.constantFrom(...table.columns),
    fault: fc.constantFrom('type', 'unknownColumn', 'unknownWhere'),
  }).chain(({ column, fault }) => {
    switch (fault) {
      case 'unknownColumn':
        return fc.constant<UpdateStmt>({ kind: 'update', table: table.name, set: [['no_such_column', { kind: 'null' }]], where: null, returning: null, expect: 'error' });
      case 'unknownWhere':
        return fc.constant<UpdateStmt>({
          kind: 'update', table: table.name, set: [[column.name, { kind: 'column', name: column.name }]],
          where: { kind: 'isNull', negated: false, operand: { kind: 'raw', sql: 'no_such_column' } }, returning: null, expect: 'error',
        });
      case 'type':
        // PostgreSQL reports wrong literals even when no row matches.
        return wrongValueArb(column.type, 'assign').map((bad): UpdateStmt => ({
          kind: 'update', table: table.name, set: [[column.name, bad]], where: null, returning: null, expect: 'error',
        }));
    }
  });
}

function deleteArb(table: TableDef): fc.Arbitrary<DeleteStmt> {
  return fc.record({
    where: fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 6, arbitrary: predicateArb(table, 1, true) }),
    returning: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: returningArb(table) }),
  }).map((d): DeleteStmt => ({ kind: 'delete', table: table.name, ...d, expect: 'either' }));
}

/** A SELECT of plain rows: `*` or columns and expressions, WHERE, DISTINCT, ORDER BY, LIMIT. */
function plainSelectArb(table: TableDef): fc.Arbitrary<SelectStmt> {
  const itemArb: fc.Arbitrary<SelectItem> = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...table.columns).map((c): SelectItem => ({ expr: { kind: 'column', name: c.name }, alias: null })) },
    { weight: 1, arbitrary: fc.constantFrom(...table.columns).map((c): SelectItem => ({ expr: { kind: 'column', name: c.name }, alias: 'x' })) },
    {
      weight: 2,
      arbitrary: fc.constantFrom<ColumnType>('INTEGER', 'BIGINT', 'DOUBLE', 'TEXT', 'BOOLEAN')
        .chain((type) => typedExprArb(table, type, 2)).map((expr): SelectItem => ({ expr, alias: 'x' })),
    },
  );
  return fc.record({
    star: fc.oneof({ weight: 1, arbitrary: fc.constant(true) }, { weight: 3, arbitrary: fc.constant(false) }),
    items: fc.array(itemArb, { minLength: 1, maxLength: 4 }),
    distinct: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    where: fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 3, arbitrary: predicateArb(table, 2, true) }),
    orderCount: fc.integer({ min: 0, max: 3 }),
    orderPicks: fc.array(fc.record({ pick: fc.nat(), descending: fc.boolean(), nulls: fc.constantFrom<'FIRST' | 'LAST' | null>(null, null, 'FIRST', 'LAST'), ordinal: fc.nat({ max: 5 }) }), { minLength: 3, maxLength: 3 }),
    limit: fc.option(fc.record({ limit: fc.integer({ min: 0, max: 5 }), offset: fc.option(fc.integer({ min: 0, max: 3 }), { nil: null }) }), { nil: null, freq: 2 }),
  }).map((s) => buildPlainSelect(table, s));
}

interface PlainSelectChoices {
  readonly star: boolean;
  readonly items: readonly SelectItem[];
  readonly distinct: boolean;
  readonly where: Expr | null;
  readonly orderCount: number;
  readonly orderPicks: readonly { readonly pick: number; readonly descending: boolean; readonly nulls: 'FIRST' | 'LAST' | null; readonly ordinal: number }[];
  readonly limit: { readonly limit: number; readonly offset: number | null } | null;
}

/** Unique output names: columns keep their name unless already taken; expressions get x0, x1…
 * Output rows may be objects keyed by name, so names must not repeat. */
function nameItems(items: readonly SelectItem[]): SelectItem[] {
  const used = new Set<string>();
  const out: SelectItem[] = [];
  items.forEach((item, i) => {
    if (item.expr.kind === 'column' && item.alias === null && !used.has(item.expr.name)) {
      used.add(item.expr.name);
      out.push(item);
    } else {
      const alias = `x${i}`;
      used.add(alias);
      out.push({ expr: item.expr, alias });
    }
  });
  return out;
}

function outputName(item: SelectItem): string {
  if (item.alias !== null) return item.alias;
  if (item.expr.kind === 'column') return item.expr.name;
  throw new Error('unnamed select item');
}

function buildPlainSelect(table: TableDef, choices: PlainSelectChoices): SelectStmt {
  let s = choices;
  const items = s.star ? null : nameItems(s.items);
  const risky = mayFail(s.where) || (items?.some((it) => mayFail(it.expr)) ?? false);
  // Which rows a LIMIT lets the engine skip evaluating is the planner's choice: no LIMIT when an
  // expression may fail.
  if (risky) s = { ...s, limit: null };
  // PostgreSQL plans a DISTINCT whose outputs are all constants as a LIMIT 1 (it stops at the
  // first row that passes WHERE), so the same holds: no such DISTINCT when an expression may fail.
  // (Seen: `SELECT DISTINCT 'a' FROM t0 WHERE k0 <> 0 / k0` succeeded in PostgreSQL, which never
  // reached the row with k0 = 0, and failed in VerityDB, which did.)
  if (risky && s.distinct && items !== null && items.every((item) => !hasColumn(item.expr))) s = { ...s, distinct: false };
  const outputs: { name: string; column: string | null; orderable: boolean }[] = items === null
    ? table.columns.map((c) => ({ name: c.name, column: c.name, orderable: true }))
    : items.map((item) => ({
      name: outputName(item),
      column: item.expr.kind === 'column' ? item.expr.name : null,
      // Ordering by computed DOUBLE/NUMERIC values could order near-ties differently between
      // exact NUMERIC and binary doubles: order by stored columns only.
      orderable: item.expr.kind === 'column',
    }));
  const orderBy: OrderKey[] = [];
  const keys: { output: number; descending: boolean }[] = [];
  let allKeysOutput = true;
  const candidates = s.distinct ? outputs.filter((o) => o.orderable).map((o) => o.name) : table.columns.map((c) => c.name);
  for (let i = 0; i < s.orderCount && candidates.length > 0; i++) {
    const pick = s.orderPicks[i];
    if (pick === undefined) break;
    const name = candidates[pick.pick % candidates.length] as string;
    if (orderBy.some((k) => k.ref === name)) continue;
    const output = outputs.findIndex((o) => o.column === name || o.name === name);
    const useOrdinal = output >= 0 && pick.ordinal === 0;
    orderBy.push({ ref: useOrdinal ? output + 1 : (output >= 0 ? (outputs[output] as { name: string }).name : name), descending: pick.descending, nulls: pick.nulls });
    if (output >= 0) keys.push({ output, descending: pick.descending });
    else allKeysOutput = false;
  }
  // LIMIT/OFFSET pick a prefix: only comparable when the order is total, so complete it.
  if (s.limit !== null) {
    const completion = s.distinct ? outputs.map((o) => o.name) : [...table.primaryKey];
    for (const name of completion) {
      const output = outputs.findIndex((o) => o.column === name || o.name === name);
      const ref = output >= 0 ? (outputs[output] as { name: string }).name : name;
      if (orderBy.some((k) => k.ref === ref || k.ref === output + 1)) continue;
      orderBy.push({ ref, descending: false, nulls: null });
    }
  }
  const refersTo = (name: string): boolean => orderBy.some((k) => {
    if (typeof k.ref === 'number') return outputs[k.ref - 1]?.column === name || outputs[k.ref - 1]?.name === name;
    return k.ref === name || outputs.find((o) => o.name === k.ref)?.column === name;
  });
  const total = orderBy.length > 0 && (s.distinct
    ? outputs.every((o) => refersTo(o.name))
    : table.primaryKey.every(refersTo));
  const order: RowOrder = total ? { kind: 'total' } : orderBy.length > 0 && allKeysOutput && keys.length === orderBy.length
    ? { kind: 'keys', keys }
    : { kind: 'none' };
  return {
    kind: 'select', table: table.name, distinct: s.distinct, items, where: s.where, groupBy: [], orderBy,
    limit: s.limit?.limit ?? null, offset: s.limit?.offset ?? null, order, expect: risky ? 'either' : 'ok',
  };
}

function aggregateArb(table: TableDef): fc.Arbitrary<Expr> {
  const numeric = columnsOfType(table, NUMERIC_TYPES);
  const ordered = columnsOfType(table, ORDERED_TYPES);
  const options: fc.WeightedArbitrary<Expr>[] = [
    { weight: 2, arbitrary: fc.constant<Expr>({ kind: 'aggregate', fn: 'COUNT', argument: null }) },
    { weight: 1, arbitrary: fc.constantFrom(...table.columns).map((c): Expr => ({ kind: 'aggregate', fn: 'COUNT', argument: { kind: 'column', name: c.name } })) },
  ];
  if (numeric.length > 0) {
    options.push({
      weight: 2,
      arbitrary: fc.constantFrom(...numeric).map((column): Expr => ({ kind: 'aggregate', fn: 'AVG', argument: { kind: 'column', name: column.name } })),
    });
  }
  // Documented deviation (docs/SQL.md, "known differences"): VerityDB has no NUMERIC type, so
  // SUM over BIGINT is BIGINT and fails beyond int64 where PostgreSQL returns a NUMERIC. SUM is
  // generated over INTEGER and DOUBLE only.
  const summable = columnsOfType(table, ['INTEGER', 'DOUBLE']);
  if (summable.length > 0) {
    options.push({
      weight: 2,
      arbitrary: fc.constantFrom(...summable).map((column): Expr => ({ kind: 'aggregate', fn: 'SUM', argument: { kind: 'column', name: column.name } })),
    });
  }
  if (ordered.length > 0) {
    options.push({
      weight: 3,
      arbitrary: fc.record({ fn: fc.constantFrom<AggregateFn>('MIN', 'MAX'), column: fc.constantFrom(...ordered) })
        .map(({ fn, column }): Expr => ({ kind: 'aggregate', fn, argument: { kind: 'column', name: column.name } })),
    });
  }
  return fc.oneof(...options);
}

/** A SELECT with aggregates, optionally grouped by one or two columns. */
function aggregateSelectArb(table: TableDef): fc.Arbitrary<SelectStmt> {
  return fc.record({
    groupBy: fc.shuffledSubarray(table.columns.map((c) => c.name), { maxLength: Math.min(2, table.columns.length) }),
    showGroups: fc.boolean(),
    aggregates: fc.array(aggregateArb(table), { minLength: 1, maxLength: 3 }),
    where: fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 2, arbitrary: predicateArb(table, 1, true) }),
    ordered: fc.boolean(),
    descending: fc.boolean(),
    nulls: fc.constantFrom<'FIRST' | 'LAST' | null>(null, null, 'FIRST', 'LAST'),
    limit: fc.option(fc.integer({ min: 0, max: 4 }), { nil: null, freq: 3 }),
  }).map((s): SelectStmt => {
    const groupItems: SelectItem[] = s.groupBy.length > 0 && (s.showGroups || s.ordered || s.limit !== null)
      ? s.groupBy.map((name) => ({ expr: { kind: 'column', name }, alias: null }))
      : [];
    const items = [...groupItems, ...s.aggregates.map((expr, i): SelectItem => ({ expr, alias: `a${i}` }))];
    const limit = mayFail(s.where) ? null : s.limit;
    const orderBy: OrderKey[] = (s.ordered || limit !== null) ? groupItems.map((it) => ({ ref: outputName(it), descending: s.descending, nulls: s.nulls })) : [];
    const total = s.groupBy.length === 0 || (orderBy.length > 0 && orderBy.length === s.groupBy.length);
    return {
      kind: 'select', table: table.name, distinct: false, items, where: s.where, groupBy: s.groupBy, orderBy,
      limit, offset: null, order: total ? { kind: 'total' } : { kind: 'none' },
      expect: mayFail(s.where) ? 'either' : 'ok',
    };
  });
}

/** SELECTs that must fail: unknown column, bare column beside an aggregate, type errors. */
function badSelectArb(table: TableDef): fc.Arbitrary<SelectStmt> {
  const base: SelectStmt = {
    kind: 'select', table: table.name, distinct: false, items: null, where: null, groupBy: [], orderBy: [],
    limit: null, offset: null, order: { kind: 'none' }, expect: 'error',
  };
  const column = fc.constantFrom(...table.columns);
  const notLikeable = table.columns.filter((c) => c.type !== 'TEXT' && c.type !== 'BYTES');
  return fc.oneof(
    fc.constant<SelectStmt>({ ...base, items: [{ expr: { kind: 'raw', sql: 'no_such_column' }, alias: null }] }),
    fc.constant<SelectStmt>({ ...base, where: { kind: 'compare', op: '=', left: { kind: 'raw', sql: 'no_such_column' }, right: { kind: 'const', type: 'INTEGER', seed: 1, param: false, typedLiteral: false } } }),
    fc.constant<SelectStmt>({ ...base, table: 'no_such_table' }),
    column.map((c): SelectStmt => ({
      ...base,
      items: [{ expr: { kind: 'column', name: c.name }, alias: null }, { expr: { kind: 'aggregate', fn: 'COUNT', argument: null }, alias: 'n' }],
    })),
    column.chain((c) => wrongValueArb(c.type, 'compare').map((bad): SelectStmt => ({
      ...base, where: { kind: 'compare', op: '=', left: { kind: 'column', name: c.name }, right: bad },
    }))),
    // LIKE is defined for TEXT and BYTEA only.
    ...(notLikeable.length === 0 ? [] : [fc.constantFrom(...notLikeable).map((c): SelectStmt => ({
      ...base, where: { kind: 'like', negated: false, operand: { kind: 'column', name: c.name }, pattern: 'a%' },
    }))]),
  );
}

function statementArb(schema: Schema): fc.Arbitrary<Statement> {
  const tableArb = fc.constantFrom(...schema.tables);
  return tableArb.chain((table) => fc.oneof(
    { weight: 8, arbitrary: insertArb(table) },
    { weight: 3, arbitrary: updateArb(table) },
    { weight: 2, arbitrary: deleteArb(table) },
    { weight: 7, arbitrary: plainSelectArb(table) },
    { weight: 4, arbitrary: aggregateSelectArb(table) },
    { weight: 1, arbitrary: badInsertArb(table) },
    { weight: 1, arbitrary: badUpdateArb(table) },
    { weight: 1, arbitrary: badSelectArb(table) },
  ));
}

/** A whole case: a schema and 1–`statementsMax` statements over it. */
export function caseArb(statementsMax = 14): fc.Arbitrary<TestCase> {
  return schemaArb().chain((schema) =>
    fc.record({
      statements: fc.array(statementArb(schema), { minLength: 1, maxLength: statementsMax }),
      groupSizes: fc.array(fc.oneof({ weight: 4, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 3 }) }), { maxLength: statementsMax }),
    }).map(({ statements, groupSizes }) => ({ schema, statements, groupSizes })));
}

// ---------------------------------------------------------------------------------------------
// Rendering

class ParamCollector {
  readonly params: SqlValue[] = [];
  add(value: SqlValue): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }
}

function quoteText(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

function doubleLiteral(value: number): string {
  const text = String(value);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

/** The SQL literal of a domain value (never for BYTES, which always travel as parameters). */
export function literalOf(type: ColumnType, seed: number, typedLiteral: boolean): string {
  const value = domainValue(type, seed);
  switch (type) {
    case 'BIGINT': case 'INTEGER': return String(value);
    case 'DOUBLE': return doubleLiteral(value as number);
    case 'TEXT': return quoteText(value as string);
    case 'BOOLEAN': return value ? 'TRUE' : 'FALSE';
    case 'DATE': return typedLiteral ? `DATE ${quoteText(value as string)}` : quoteText(value as string);
    case 'TIMESTAMP': return typedLiteral ? `TIMESTAMP ${quoteText(value as string)}` : quoteText(value as string);
    case 'BYTES': throw new Error('BYTES values are passed as parameters');
  }
}

function renderExpr(expr: Expr, params: ParamCollector): string {
  switch (expr.kind) {
    case 'const':
      return expr.param ? params.add(domainValue(expr.type, expr.seed)) : literalOf(expr.type, expr.seed, expr.typedLiteral);
    case 'raw': return expr.sql;
    case 'null': return 'NULL';
    case 'column': return expr.qualifier === undefined ? expr.name : `${expr.qualifier}.${expr.name}`;
    case 'arith': return `(${renderExpr(expr.left, params)} ${expr.op} ${renderExpr(expr.right, params)})`;
    case 'negate': return `(- ${renderExpr(expr.operand, params)})`;
    case 'concat': return `(${renderExpr(expr.left, params)} || ${renderExpr(expr.right, params)})`;
    case 'compare': return `(${renderExpr(expr.left, params)} ${expr.op} ${renderExpr(expr.right, params)})`;
    case 'logic': return `(${renderExpr(expr.left, params)} ${expr.op} ${renderExpr(expr.right, params)})`;
    case 'not': return `(NOT ${renderExpr(expr.operand, params)})`;
    case 'isNull': return `(${renderExpr(expr.operand, params)} IS ${expr.negated ? 'NOT ' : ''}NULL)`;
    case 'in': {
      const operand = renderExpr(expr.operand, params);
      const list = expr.list.map((e) => renderExpr(e, params)).join(', ');
      return `(${operand} ${expr.negated ? 'NOT ' : ''}IN (${list}))`;
    }
    case 'between': {
      const operand = renderExpr(expr.operand, params);
      const low = renderExpr(expr.low, params);
      const high = renderExpr(expr.high, params);
      return `(${operand} ${expr.negated ? 'NOT ' : ''}BETWEEN ${low} AND ${high})`;
    }
    case 'like': return `(${renderExpr(expr.operand, params)} ${expr.negated ? 'NOT ' : ''}LIKE ${quoteText(expr.pattern)})`;
    case 'aggregate': return `${expr.fn}(${expr.argument === null ? '*' : renderExpr(expr.argument, params)})`;
  }
}

function renderItems(items: readonly SelectItem[], params: ParamCollector): string {
  return items.map((item) => {
    const sql = renderExpr(item.expr, params);
    return item.alias === null ? sql : `${sql} AS ${item.alias}`;
  }).join(', ');
}

function renderReturning(items: readonly SelectItem[] | null, params: ParamCollector): string {
  return items === null ? '' : ` RETURNING ${renderItems(items, params)}`;
}

function renderSet(set: readonly (readonly [string, Expr])[], params: ParamCollector): string {
  return set.map(([name, e]) => `${name} = ${renderExpr(e, params)}`).join(', ');
}

export function renderStatement(stmt: Statement): RenderedStatement {
  const params = new ParamCollector();
  let sql: string;
  switch (stmt.kind) {
    case 'insert': {
      const columns = stmt.columns === null ? '' : ` (${stmt.columns.join(', ')})`;
      const rows = stmt.rows.map((row) => `(${row.map((e) => renderExpr(e, params)).join(', ')})`).join(', ');
      let conflict = '';
      if (stmt.onConflict !== null) {
        const c = stmt.onConflict;
        const target = c.target === null ? '' : ` (${c.target.join(', ')})`;
        conflict = c.action === 'nothing'
          ? ` ON CONFLICT${target} DO NOTHING`
          : ` ON CONFLICT${target} DO UPDATE SET ${renderSet(c.set, params)}`;
      }
      sql = `INSERT INTO ${stmt.table}${columns} VALUES ${rows}${conflict}${renderReturning(stmt.returning, params)}`;
      break;
    }
    case 'update': {
      const set = renderSet(stmt.set, params);
      const where = stmt.where === null ? '' : ` WHERE ${renderExpr(stmt.where, params)}`;
      sql = `UPDATE ${stmt.table} SET ${set}${where}${renderReturning(stmt.returning, params)}`;
      break;
    }
    case 'delete': {
      const where = stmt.where === null ? '' : ` WHERE ${renderExpr(stmt.where, params)}`;
      sql = `DELETE FROM ${stmt.table}${where}${renderReturning(stmt.returning, params)}`;
      break;
    }
    case 'select': {
      const items = stmt.items === null ? '*' : renderItems(stmt.items, params);
      const where = stmt.where === null ? '' : ` WHERE ${renderExpr(stmt.where, params)}`;
      const group = stmt.groupBy.length === 0 ? '' : ` GROUP BY ${stmt.groupBy.join(', ')}`;
      const order = stmt.orderBy.length === 0 ? '' : ` ORDER BY ${stmt.orderBy.map((k) => `${k.ref}${k.descending ? ' DESC' : ''}${k.nulls === null ? '' : ` NULLS ${k.nulls}`}`).join(', ')}`;
      const limit = stmt.limit === null ? '' : ` LIMIT ${stmt.limit}`;
      const offset = stmt.offset === null ? '' : ` OFFSET ${stmt.offset}`;
      sql = `SELECT ${stmt.distinct ? 'DISTINCT ' : ''}${items} FROM ${stmt.table}${where}${group}${order}${limit}${offset}`;
      break;
    }
  }
  return { sql, params: params.params, mode: stmt.kind === 'select' ? 'query' : 'execute', expect: stmt.expect };
}

function renderColumn(column: ColumnDef, table: TableDef, dialect: Dialect): string {
  const parts = [column.name, TYPE_NAMES[dialect][column.type]];
  if (!table.tableLevelKey && table.primaryKey[0] === column.name) parts.push('PRIMARY KEY');
  else if (column.notNull) parts.push('NOT NULL');
  if (column.unique) parts.push('UNIQUE');
  if (column.defaultSeed !== null) parts.push(`DEFAULT ${literalOf(column.type, column.defaultSeed, false)}`);
  return parts.join(' ');
}

/** CREATE TABLE and CREATE INDEX statements of a schema, for one dialect. */
export function renderSchema(schema: Schema, dialect: Dialect): RenderedStatement[] {
  const out: RenderedStatement[] = [];
  for (const table of schema.tables) {
    const defs = table.columns.map((c) => renderColumn(c, table, dialect));
    if (table.tableLevelKey) defs.push(`PRIMARY KEY (${table.primaryKey.join(', ')})`);
    out.push({ sql: `CREATE TABLE ${table.name} (${defs.join(', ')})`, params: [], mode: 'execute', expect: 'ok' });
    for (const ix of table.indexes) {
      out.push({
        sql: `CREATE ${ix.unique ? 'UNIQUE ' : ''}INDEX ${ix.name} ON ${table.name} (${ix.columns.join(', ')})`,
        params: [], mode: 'execute', expect: 'ok',
      });
    }
  }
  return out;
}

/** A readable script of a case (for failure reports): DDL then statements with parameters. */
export function describeCase(testCase: TestCase, dialect: Dialect): string {
  const lines = renderSchema(testCase.schema, dialect).map((s) => `${s.sql};`);
  for (const step of stepsOf(testCase)) {
    if (step.length > 1) lines.push('-- one atomic batch:');
    for (const stmt of step) {
      const r = renderStatement(stmt);
      lines.push(`${step.length > 1 ? '  ' : ''}${r.sql};${r.params.length === 0 ? '' : `  -- params ${describeParams(r.params)}`}`);
    }
    if (step.length > 1) lines.push('-- end of batch');
  }
  return lines.join('\n');
}

export function describeParams(params: readonly SqlValue[]): string {
  return `[${params.map(describeValue).join(', ')}]`;
}

function describeValue(value: SqlValue): string {
  if (value instanceof Uint8Array) return `bytes(${Array.from(value, (b) => b.toString(16).padStart(2, '0')).join('')})`;
  if (typeof value === 'bigint') return `${value}n`;
  return JSON.stringify(value);
}
