import { compareValues, type Key, type KeyBound, type KeyRange, type SqlType, type Value } from '@veritydb/types';
import type { Expr, OrderItem } from './ast.js';
import { bindExpr, coerce, type BindEnv } from './bind.js';
import type { TableDef } from './catalog.js';
import { isNumericType } from './values.js';

/**
 * The access-path planner (DESIGN §8). It only narrows which rows are read: the executor
 * always re-applies the whole WHERE clause to every row read, so a path is correct as long as
 * it returns a superset of the matching rows. That keeps the planner small and its bugs
 * harmless to results (the property test compares it with a full scan).
 */
export type AccessPath =
  | { readonly kind: 'fullScan'; readonly reverse: boolean }
  | {
      readonly kind: 'indexScan';
      /** null = the primary key. */
      readonly index: string | null;
      readonly columns: readonly string[];
      readonly ranges: readonly KeyRange[];
      readonly reverse: boolean;
      /** 'point' (equality on a whole unique key), 'lookup' (on a whole non-unique key), 'multi'
       * (IN), 'prefix' (equality on leading columns), 'range', or 'order' (all rows, index order). */
      readonly shape: 'point' | 'lookup' | 'multi' | 'prefix' | 'range' | 'order';
      readonly detail: string;
    }
  | { readonly kind: 'union'; readonly branches: readonly (AccessPath & { kind: 'indexScan' })[] };

export interface Plan {
  readonly path: AccessPath;
  /** True when the path returns rows in the ORDER BY order (no sort needed). */
  readonly ordered: boolean;
}

interface Predicate {
  readonly column: string;
  readonly op: '=' | '<' | '<=' | '>' | '>=' | 'in';
  readonly values: readonly Value[];
}

const IN_KEYS_MAX = 1024;

export function planAccess(table: TableDef, where: Expr | null, orderBy: readonly OrderItem[], env: BindEnv, forceFullScan: boolean): Plan {
  if (forceFullScan) return { path: { kind: 'fullScan', reverse: false }, ordered: false };
  const conjuncts = where === null ? [] : flattenAnd(where);
  const predicates = conjuncts.flatMap((c) => extract(c, table, env));
  const indexes = candidates(table);
  let best: { path: AccessPath & { kind: 'indexScan' }; score: number; eqCount: number } | null = null;
  for (const candidate of indexes) {
    const built = buildPath(candidate, predicates);
    if (built !== null && (best === null || built.score > best.score)) best = built;
  }
  if (best === null) {
    for (const c of conjuncts) {
      if (c.kind === 'binary' && c.op === 'OR') {
        const union = planUnion(flattenOr(c), table, env, indexes);
        if (union !== null) return { path: union, ordered: false };
      }
    }
  }
  if (best !== null) {
    const ordered = best.path.ranges.length !== 1 ? null : orderMatches(table, indexes.find((i) => i.name === best.path.index) as IndexCandidate, best.eqCount, orderBy);
    if (ordered !== null && orderBy.length > 0) return { path: { ...best.path, reverse: ordered }, ordered: true };
    return { path: best.path, ordered: orderBy.length === 0 };
  }
  if (orderBy.length > 0) {
    for (const candidate of indexes) {
      const reverse = orderMatches(table, candidate, 0, orderBy);
      if (reverse !== null) {
        return {
          path: { kind: 'indexScan', index: candidate.name, columns: candidate.columns, ranges: [{}], reverse, shape: 'order', detail: 'all rows in index order' },
          ordered: true,
        };
      }
    }
  }
  return { path: { kind: 'fullScan', reverse: false }, ordered: orderBy.length === 0 };
}

interface IndexCandidate {
  readonly name: string | null;
  readonly columns: readonly string[];
  readonly unique: boolean;
  /** Columns the scan is ordered by: the index columns, then (secondary) the primary key. */
  readonly orderColumns: readonly string[];
}

function candidates(table: TableDef): IndexCandidate[] {
  return [
    { name: null, columns: table.primaryKey, unique: true, orderColumns: table.primaryKey },
    ...table.indexes.map((i) => ({ name: i.name, columns: i.columns, unique: i.unique, orderColumns: [...i.columns, ...table.primaryKey] })),
  ];
}

function flattenAnd(e: Expr): Expr[] {
  return e.kind === 'binary' && e.op === 'AND' ? [...flattenAnd(e.left), ...flattenAnd(e.right)] : [e];
}

function flattenOr(e: Expr): Expr[] {
  return e.kind === 'binary' && e.op === 'OR' ? [...flattenOr(e.left), ...flattenOr(e.right)] : [e];
}

/** The value of a row-independent expression converted to the column's type, or undefined. */
function constantFor(e: Expr, type: SqlType, env: BindEnv): Value | undefined {
  if (!isConstantExpr(e)) return undefined;
  const b = bindExpr(e, env);
  if (b.constant === null) return undefined;
  const sameFamily = b.type === type || (isNumericType(b.type) && isNumericType(type));
  const c = sameFamily ? b : coerce(b, type);
  if (c === null || c.constant === null) return undefined;
  const v = c.constant.value;
  return v === null ? undefined : v;
}

function isConstantExpr(e: Expr): boolean {
  switch (e.kind) {
    case 'literal': case 'param': return true;
    case 'cast': return isConstantExpr(e.operand);
    case 'unary': return e.op !== 'NOT' && isConstantExpr(e.operand);
    default: return false;
  }
}

function tableColumn(e: Expr, table: TableDef): { name: string; type: SqlType } | null {
  if (e.kind !== 'column') return null;
  const c = table.columns.find((col) => col.name === e.name);
  return c === undefined ? null : { name: c.name, type: c.type };
}

const FLIP = { '=': '=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' } as const;

function extract(e: Expr, table: TableDef, env: BindEnv): Predicate[] {
  if (e.kind === 'binary' && (e.op === '=' || e.op === '<' || e.op === '<=' || e.op === '>' || e.op === '>=')) {
    const op = e.op;
    const l = tableColumn(e.left, table);
    if (l !== null) {
      const v = constantFor(e.right, l.type, env);
      if (v !== undefined) return [{ column: l.name, op, values: [v] }];
    }
    const r = tableColumn(e.right, table);
    if (r !== null) {
      const v = constantFor(e.left, r.type, env);
      if (v !== undefined) return [{ column: r.name, op: FLIP[op], values: [v] }];
    }
    return [];
  }
  if (e.kind === 'between' && !e.negated) {
    const c = tableColumn(e.operand, table);
    if (c === null) return [];
    const low = constantFor(e.low, c.type, env);
    const high = constantFor(e.high, c.type, env);
    const out: Predicate[] = [];
    if (low !== undefined) out.push({ column: c.name, op: '>=', values: [low] });
    if (high !== undefined) out.push({ column: c.name, op: '<=', values: [high] });
    return out;
  }
  if (e.kind === 'in' && !e.negated && e.list.length <= IN_KEYS_MAX) {
    const c = tableColumn(e.operand, table);
    if (c === null) return [];
    const values: Value[] = [];
    for (const item of e.list) {
      if (item.kind === 'literal' && item.literal === 'null') continue;
      const v = constantFor(item, c.type, env);
      if (v === undefined) return [];
      values.push(v);
    }
    values.sort(compareValues);
    const unique = values.filter((v, i) => i === 0 || compareValues(v, values[i - 1] as Value) !== 0);
    return [{ column: c.name, op: 'in', values: unique }];
  }
  return [];
}

function buildPath(candidate: IndexCandidate, predicates: readonly Predicate[]):
  { path: AccessPath & { kind: 'indexScan' }; score: number; eqCount: number } | null {
  const prefix: Value[] = [];
  const described: string[] = [];
  let inValues: readonly Value[] | null = null;
  let position = 0;
  for (; position < candidate.columns.length; position++) {
    const column = candidate.columns[position] as string;
    const eq = predicates.find((p) => p.column === column && p.op === '=');
    if (eq !== undefined) {
      prefix.push(eq.values[0] as Value);
      described.push(`${column} = ${show(eq.values[0] as Value)}`);
      continue;
    }
    const inPredicate = predicates.find((p) => p.column === column && p.op === 'in');
    if (inPredicate !== undefined) {
      inValues = inPredicate.values;
      described.push(`${column} IN (${inPredicate.values.map(show).join(', ')})`);
      position++;
    }
    break;
  }
  const prefixes: Key[] = inValues === null ? [prefix] : inValues.map((v) => [...prefix, v]);
  const keyLength = prefix.length + (inValues === null ? 0 : 1);
  const rangeColumn = candidate.columns[keyLength];
  let lower: { value: Value; inclusive: boolean } | null = null;
  let upper: { value: Value; inclusive: boolean } | null = null;
  if (rangeColumn !== undefined && position === keyLength) {
    for (const p of predicates) {
      if (p.column !== rangeColumn) continue;
      const v = p.values[0] as Value;
      if (p.op === '>' || p.op === '>=') {
        const c = lower === null ? 1 : compareValues(v, lower.value);
        if (c > 0 || (c === 0 && p.op === '>')) lower = { value: v, inclusive: p.op === '>=' };
      }
      if (p.op === '<' || p.op === '<=') {
        const c = upper === null ? -1 : compareValues(v, upper.value);
        if (c < 0 || (c === 0 && p.op === '<')) upper = { value: v, inclusive: p.op === '<=' };
      }
    }
    if (lower !== null) described.push(`${rangeColumn} ${lower.inclusive ? '>=' : '>'} ${show(lower.value)}`);
    if (upper !== null) described.push(`${rangeColumn} ${upper.inclusive ? '<=' : '<'} ${show(upper.value)}`);
  }
  if (keyLength === 0 && lower === null && upper === null) return null;
  const ranges: KeyRange[] = prefixes.map((p) => {
    const lo: KeyBound | undefined = lower !== null ? { key: [...p, lower.value], inclusive: lower.inclusive } : p.length > 0 ? { key: p, inclusive: true } : undefined;
    const hi: KeyBound | undefined = upper !== null ? { key: [...p, upper.value], inclusive: upper.inclusive } : p.length > 0 ? { key: p, inclusive: true } : undefined;
    return { ...(lo === undefined ? {} : { lower: lo }), ...(hi === undefined ? {} : { upper: hi }) };
  });
  const full = keyLength === candidate.columns.length;
  const shape = inValues !== null ? 'multi' : full && lower === null && upper === null ? (candidate.unique ? 'point' : 'lookup') : lower !== null || upper !== null ? 'range' : 'prefix';
  let score = keyLength * 10 + (lower !== null ? 3 : 0) + (upper !== null ? 3 : 0) + (candidate.name === null ? 1 : 0);
  if (full && candidate.unique && inValues === null) score += 1000;
  return {
    path: { kind: 'indexScan', index: candidate.name, columns: candidate.columns, ranges, reverse: false, shape, detail: described.join(' AND ') },
    score,
    eqCount: prefix.length,
  };
}

function planUnion(branches: readonly Expr[], table: TableDef, env: BindEnv, indexes: readonly IndexCandidate[]): AccessPath | null {
  const paths: (AccessPath & { kind: 'indexScan' })[] = [];
  for (const branch of branches) {
    const predicates = flattenAnd(branch).flatMap((c) => extract(c, table, env));
    let best: { path: AccessPath & { kind: 'indexScan' }; score: number } | null = null;
    for (const candidate of indexes) {
      const built = buildPath(candidate, predicates);
      if (built !== null && (best === null || built.score > best.score)) best = built;
    }
    if (best === null) return null;
    paths.push(best.path);
  }
  return { kind: 'union', branches: paths };
}

/** Whether scanning `candidate` (after `eqCount` equality-bound columns) yields ORDER BY's
 * order: null if not, else whether to scan in reverse. NULLs sort first in key order, which
 * is PostgreSQL's order only for ASC NULLS FIRST / DESC NULLS LAST, so nullable columns match
 * only with those explicit clauses. */
function orderMatches(table: TableDef, candidate: IndexCandidate, eqCount: number, orderBy: readonly OrderItem[]): boolean | null {
  if (orderBy.length === 0) return false;
  const bound = new Set(candidate.columns.slice(0, eqCount));
  let position = eqCount;
  let reverse: boolean | null = null;
  for (const item of orderBy) {
    if (item.expr.kind !== 'column' || item.expr.table !== null && item.expr.table !== table.name) return null;
    const name = item.expr.name;
    if (bound.has(name)) continue;
    if (candidate.orderColumns[position] !== name) return null;
    position++;
    if (reverse === null) reverse = item.descending;
    if (reverse !== item.descending) return null;
    const column = table.columns.find((c) => c.name === name);
    if (column === undefined) return null;
    const notNull = column.notNull || table.primaryKey.includes(name);
    const nullsFirst = item.nullsFirst ?? item.descending;
    if (!notNull && nullsFirst !== !item.descending) return null;
  }
  return reverse ?? false;
}

function show(v: Value): string {
  if (typeof v === 'string') return `'${v.replace(/'/g, "''")}'`;
  if (v instanceof Uint8Array) return `'\\x${Array.from(v, (b) => b.toString(16).padStart(2, '0')).join('')}'`;
  if (v !== null && typeof v === 'object') return `'${JSON.stringify(v)}'`;
  return String(v);
}

export function describePath(path: AccessPath, table: string): { operation: string; index: string | null; detail: string }[] {
  switch (path.kind) {
    case 'fullScan': return [{ operation: 'Full Scan', index: null, detail: `every row of ${table}` }];
    case 'indexScan': {
      const operation = { point: 'Point Lookup', lookup: 'Index Lookup', multi: 'Multi Lookup', prefix: 'Prefix Scan', range: 'Range Scan', order: 'Index Order Scan' }[path.shape];
      return [{ operation, index: path.index ?? 'PRIMARY KEY', detail: `${path.detail}${path.reverse ? ' (reverse)' : ''}` }];
    }
    case 'union': return [
      { operation: 'Union', index: null, detail: `${path.branches.length} index scans, rows deduplicated by primary key` },
      ...path.branches.flatMap((b) => describePath(b, table)),
    ];
  }
}

