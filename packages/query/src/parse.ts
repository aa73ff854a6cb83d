/* eslint-disable @typescript-eslint/no-explicit-any -- node-sql-parser's AST is loosely typed;
   this file is the edge where it is checked and converted into our own nodes. */
import NodeSqlParser from 'node-sql-parser/build/postgresql.js';
import { limits, type SqlType } from '@veritydb/types';
import type {
  AggregateFn, Assignment, CreateProjectionStatement, ProjectionSource, BinaryOp, ColumnSpec, Expr, OnConflict, OrderItem, SelectItem, SelectStatement, Statement, TableRef,
} from './ast.js';
import { fail, lineColumn, sqlError, SqlFault, type Result } from './errors.js';
import { prepass, type Prepassed } from './prepass.js';
import { sqlTypeFromName } from './values.js';

type Raw = any;

const parser = new NodeSqlParser.Parser();
const PARSER_OPTIONS = { database: 'PostgresQL' };

export interface Parsed {
  readonly statement: Statement;
  /** Highest parameter number used ($n or the count of ?). */
  readonly paramCount: number;
}

/** SQL text → our statement node, or a typed error with line and column for syntax errors. */
export function parseStatement(sql: string): Result<Parsed> {
  if (sql.length > limits.sqlTextBytesMax) {
    return { ok: false, error: sqlError('Unsupported', `statement text exceeds ${limits.sqlTextBytesMax} bytes`) };
  }
  const pre = prepass(sql);
  if (!pre.ok) return pre;
  const p = pre.value;
  if (p.special !== null) {
    switch (p.special.kind) {
      case 'showTables': return { ok: true, value: { statement: { kind: 'showTables' }, paramCount: 0 } };
      case 'showProjections': return { ok: true, value: { statement: { kind: 'showProjections' }, paramCount: 0 } };
      case 'describe': return { ok: true, value: { statement: { kind: 'describe', table: p.special.table }, paramCount: 0 } };
      case 'dropProjection': return { ok: true, value: { statement: { kind: 'dropProjection', name: p.special.name, ifExists: p.special.ifExists }, paramCount: 0 } };
      case 'createProjection': return parseProjection(sql, p.special.name, p.special.bodyStart);
    }
  }
  if (p.text.trim() === '' || p.text.trim() === ';') {
    return { ok: false, error: sqlError('SyntaxError', 'empty statement', { line: 1, column: 1 }) };
  }
  let raw: Raw;
  try {
    raw = parser.astify(p.text, PARSER_OPTIONS);
  } catch (e) {
    return { ok: false, error: syntaxError(p, e) };
  }
  if (Array.isArray(raw)) {
    if (raw.length !== 1) return { ok: false, error: sqlError('Unsupported', 'several statements in one text are not supported: send them as a batch') };
    raw = raw[0];
  }
  try {
    const statement = convertStatement(raw, p);
    return { ok: true, value: { statement, paramCount: p.paramCount } };
  } catch (e) {
    if (e instanceof SqlFault) return { ok: false, error: e.error };
    if (e instanceof TypeError) return { ok: false, error: sqlError('Unsupported', 'unsupported SQL construct') };
    if (e instanceof RangeError) return { ok: false, error: sqlError('Unsupported', 'statement is nested too deeply') };
    throw e;
  }
}

/** `CREATE PROJECTION name AS <select>`: the SELECT is pre-passed and parsed on its own, with
 * the prefix blanked (newlines kept) so error positions point into the original text. */
function parseProjection(sql: string, name: string, bodyStart: number): Result<Parsed> {
  const blanked = sql.slice(0, bodyStart).replace(/[^\n]/g, ' ') + sql.slice(bodyStart);
  const pre = prepass(blanked);
  if (!pre.ok) return pre;
  const p = pre.value;
  const refuse = (what: string): Result<Parsed> => ({ ok: false, error: sqlError('Unsupported', `CREATE PROJECTION does not support ${what}`) });
  if (p.special !== null || p.explain) return refuse('this statement: expected AS SELECT …');
  if (p.paramCount > 0) return refuse('parameters ($n or ?): a projection is defined by constants');
  if (p.asOf.size > 0) return refuse('AS OF: a projection is maintained at the head and read AS OF like a table');
  let raw: Raw;
  try {
    raw = parser.astify(p.text, PARSER_OPTIONS);
  } catch (e) {
    // The parser reports offsets into its input with leading whitespace trimmed.
    const leading = p.text.length - p.text.trimStart().length;
    return { ok: false, error: syntaxError({ ...p, original: sql, toOriginal: (offset) => p.toOriginal(offset + leading) }, e) };
  }
  if (Array.isArray(raw)) {
    if (raw.length !== 1) return refuse('several statements');
    raw = raw[0];
  }
  if (raw?.type !== 'select') return refuse(`${String(raw?.type).toUpperCase()}: expected AS SELECT …`);
  try {
    return { ok: true, value: { statement: convertProjection(raw, p, name, sql), paramCount: 0 }, };
  } catch (e) {
    if (e instanceof SqlFault) return { ok: false, error: e.error };
    if (e instanceof TypeError) return { ok: false, error: sqlError('Unsupported', 'unsupported SQL construct in CREATE PROJECTION') };
    if (e instanceof RangeError) return { ok: false, error: sqlError('Unsupported', 'statement is nested too deeply') };
    throw e;
  }
}

function convertProjection(raw: Raw, p: Prepassed, name: string, sql: string): CreateProjectionStatement {
  const refuse = (what: string): never => fail('Unsupported', `CREATE PROJECTION does not support ${what}`);
  if (raw.with !== null && raw.with !== undefined) refuse('common table expressions (WITH)');
  if (raw._next !== undefined && raw._next !== null) refuse(`${String(raw.set_op ?? 'set operation').toUpperCase()}`);
  if (raw.having !== null && raw.having !== undefined) refuse('HAVING (filter the projection when you read it)');
  if (raw.window !== null && raw.window !== undefined) refuse('window functions');
  if (raw.distinct?.type !== null && raw.distinct?.type !== undefined) refuse('SELECT DISTINCT');
  if (raw.orderby !== null && raw.orderby !== undefined && raw.orderby.length > 0) refuse('ORDER BY (order when you read the projection)');
  if (raw.limit?.value !== undefined && raw.limit.value.length > 0) refuse('LIMIT/OFFSET (limit when you read the projection)');
  const fromList: Raw[] = Array.isArray(raw.from) ? raw.from : [];
  if (fromList.length === 0) refuse('a SELECT without FROM');
  const from = fromList.map((f, i): ProjectionSource => {
    const ref = tableRef(f, p);
    if (i === 0) return { ref, join: null, on: null };
    const kind = typeof f.join === 'string' ? f.join.toUpperCase() : null;
    if (kind === null) refuse('several tables in FROM separated by commas: use JOIN … ON');
    if (f.using !== undefined && f.using !== null) refuse('JOIN … USING: write ON a.x = b.y');
    if (kind !== 'INNER JOIN' && kind !== 'JOIN' && kind !== 'LEFT JOIN' && kind !== 'LEFT OUTER JOIN') refuse(`${String(kind)} (only INNER and LEFT joins)`);
    if (f.on === null || f.on === undefined) refuse(`${String(kind)} without ON`);
    return { ref, join: kind.startsWith('LEFT') ? 'left' : 'inner', on: convertExpr(f.on) };
  });
  return {
    kind: 'createProjection',
    name,
    sql,
    from,
    items: convertItems(raw.columns),
    where: raw.where === null || raw.where === undefined ? null : convertExpr(raw.where),
    groupBy: (raw.groupby?.columns ?? []).map(convertExpr),
  };
}

function syntaxError(p: Prepassed, e: unknown): ReturnType<typeof sqlError> {
  const location = (e as { location?: { start?: { offset?: unknown } } } | null)?.location?.start?.offset;
  const offset = typeof location === 'number' ? p.toOriginal(location) : 0;
  const where = lineColumn(p.original, offset);
  const near = p.original.slice(offset, offset + 40).trimStart().split('\n')[0] ?? '';
  const message = offset >= p.original.trimEnd().length
    ? 'syntax error at end of input'
    : `syntax error at or near "${near.split(/\s/)[0] ?? near}"`;
  return sqlError('SyntaxError', `${message} (line ${where.line}, column ${where.column})`, where);
}

function unsupported(what: string): never {
  fail('Unsupported', `${what} ${/s$/.test(what) ? 'are' : 'is'} not supported`);
}

function identifier(raw: Raw): string {
  let name: unknown = raw;
  if (raw !== null && typeof raw === 'object') {
    if (raw.type === 'double_quote_string') return checkIdentifier(String(raw.value));
    name = raw.expr !== undefined ? raw.expr.value : raw.value;
  }
  if (typeof name !== 'string') unsupported('this identifier form');
  return checkIdentifier(name.toLowerCase());
}

function checkIdentifier(name: string): string {
  if (name.length === 0) fail('SyntaxError', 'zero-length identifier');
  if (name.length > limits.identifierBytesMax) fail('SyntaxError', `identifier "${name.slice(0, 20)}…" is longer than ${limits.identifierBytesMax} characters`);
  return name;
}

function columnName(raw: Raw): string {
  if (raw === null || typeof raw !== 'object') return identifier(String(raw));
  if (raw.type === 'column_ref') {
    if (raw.table !== null && raw.table !== undefined) fail('Unsupported', 'qualified column names are not supported here');
    return identifier(raw.column);
  }
  return identifier(raw);
}

function tableName(raw: Raw): string {
  if (raw.db !== null && raw.db !== undefined) fail('Unsupported', 'schema-qualified table names are not supported');
  if (raw.expr !== undefined) unsupported('subqueries');
  if (typeof raw.table !== 'string') unsupported('this table reference');
  return checkIdentifier(raw.table.toLowerCase());
}

function tableRef(raw: Raw, p: Prepassed): TableRef {
  const name = tableName(raw);
  const alias = typeof raw.as === 'string' ? checkIdentifier(raw.as.toLowerCase()) : null;
  const asOf = p.asOf.get(name) ?? (alias !== null ? p.asOf.get(alias) : undefined) ?? null;
  return { name, alias, asOf };
}

function checkAsOfUsed(p: Prepassed, refs: readonly TableRef[]): void {
  for (const key of p.asOf.keys()) {
    if (!refs.some((r) => r.name === key || r.alias === key)) fail('InvalidAsOf', `AS OF must follow a table name in FROM (near "${key}")`);
  }
}

function convertStatement(raw: Raw, p: Prepassed): Statement {
  if (p.onConflictNothing !== null && raw.type !== 'insert') fail('SyntaxError', 'ON CONFLICT is only valid in INSERT');
  if (p.explain) {
    if (raw.type !== 'select') unsupported(`EXPLAIN of ${String(raw.type).toUpperCase()}`);
    return { kind: 'explain', select: convertSelect(raw, p) };
  }
  switch (raw.type) {
    case 'select': return convertSelect(raw, p);
    case 'insert': return convertInsert(raw, p);
    case 'update': return convertUpdate(raw, p);
    case 'delete': return convertDelete(raw, p);
    case 'create': return convertCreate(raw, p);
    case 'drop': return convertDrop(raw, p);
    case 'alter': return convertAlter(raw, p);
    case 'show': return raw.keyword === 'tables' ? { kind: 'showTables' } : unsupported(`SHOW ${String(raw.keyword).toUpperCase()}`);
    default: return unsupported(`${String(raw.type).toUpperCase()} statements`);
  }
}

function convertSelect(raw: Raw, p: Prepassed): SelectStatement {
  if (raw.with !== null && raw.with !== undefined) unsupported('common table expressions (WITH)');
  if (raw._next !== undefined && raw._next !== null) unsupported(`${String(raw.set_op ?? 'set operation').toUpperCase()}`);
  if (raw.having !== null && raw.having !== undefined) unsupported('HAVING');
  if (raw.window !== null && raw.window !== undefined) unsupported('window functions');
  if (raw.into?.position !== null && raw.into?.position !== undefined) unsupported('SELECT INTO');
  const fromList: Raw[] = Array.isArray(raw.from) ? raw.from : [];
  if (fromList.length > 1) unsupported(fromList.some((f) => f.join !== undefined) ? 'JOIN in ad-hoc queries (joins live in projections)' : 'several tables in FROM (joins)');
  const from = fromList.length === 1 ? tableRef(fromList[0], p) : null;
  checkAsOfUsed(p, from === null ? [] : [from]);
  const limitValues: Raw[] = raw.limit?.value ?? [];
  let limit: Expr | null = null;
  let offset: Expr | null = null;
  if (raw.limit?.seperator === 'offset' && limitValues.length === 1) offset = convertExpr(limitValues[0]);
  else if (raw.limit?.seperator === ',') unsupported('LIMIT a, b');
  else {
    if (limitValues[0] !== undefined) limit = convertExpr(limitValues[0]);
    if (limitValues[1] !== undefined) offset = convertExpr(limitValues[1]);
  }
  if (raw.distinct?.type !== null && raw.distinct?.type !== undefined && raw.distinct.type !== 'DISTINCT') unsupported(`${String(raw.distinct.type)}`);
  return {
    kind: 'select',
    from,
    distinct: raw.distinct?.type === 'DISTINCT',
    items: convertItems(raw.columns),
    where: raw.where === null || raw.where === undefined ? null : convertExpr(raw.where),
    groupBy: (raw.groupby?.columns ?? []).map(convertExpr),
    orderBy: (raw.orderby ?? []).map(convertOrder),
    limit,
    offset,
  };
}

function convertOrder(raw: Raw): OrderItem {
  const nulls = typeof raw.nulls === 'string' ? raw.nulls.toUpperCase() : null;
  return {
    expr: convertExpr(raw.expr),
    descending: raw.type === 'DESC',
    nullsFirst: nulls === null ? null : nulls.includes('FIRST'),
  };
}

function convertItems(columns: Raw): SelectItem[] {
  if (!Array.isArray(columns)) unsupported('this select list');
  return columns.map((c: Raw): SelectItem => {
    const e = c.expr;
    if (e?.type === 'column_ref' && e.column === '*') {
      if (e.table !== null && e.table !== undefined) return { kind: 'star', expr: null, alias: checkIdentifier(String(e.table).toLowerCase()), defaultName: '*' };
      return { kind: 'star', expr: null, alias: null, defaultName: '*' };
    }
    const expr = convertExpr(e);
    const alias = c.as === null || c.as === undefined ? null : identifier(c.as);
    return { kind: 'expr', expr, alias, defaultName: defaultName(expr) };
  });
}

function defaultName(expr: Expr): string {
  switch (expr.kind) {
    case 'column': return expr.name;
    case 'aggregate': return expr.fn.toLowerCase();
    case 'cast': return expr.operand.kind === 'column' ? expr.operand.name : castName(expr.type);
    default: return '?column?';
  }
}

function castName(type: SqlType): string {
  return { BIGINT: 'int8', INTEGER: 'int4', DOUBLE: 'float8', TEXT: 'text', BOOLEAN: 'bool', DATE: 'date', TIMESTAMP: 'timestamp', BYTES: 'bytea', JSON: 'json' }[type];
}

const COMPARISONS: Record<string, BinaryOp> = {
  '+': '+', '-': '-', '*': '*', '/': '/', '%': '%', '||': '||', '=': '=', '<>': '<>', '!=': '<>',
  '<': '<', '<=': '<=', '>': '>', '>=': '>=', 'AND': 'AND', 'OR': 'OR',
};

function convertExpr(raw: Raw): Expr {
  if (raw === null || typeof raw !== 'object') unsupported('this expression');
  switch (raw.type) {
    case 'number': return numberLiteral(raw.value);
    case 'bigint': return numberLiteral(String(raw.value));
    case 'single_quote_string': case 'string':
      return { kind: 'literal', literal: 'string', value: String(raw.value).replace(/''/g, "'") };
    case 'bool': return { kind: 'literal', literal: 'boolean', value: raw.value === true };
    case 'null': return { kind: 'literal', literal: 'null', value: null };
    case 'var':
      if (raw.prefix !== '$' || typeof raw.name !== 'number') unsupported('this variable syntax');
      return { kind: 'param', index: raw.name };
    case 'column_ref': {
      if (raw.column === '*') unsupported('* in this position');
      const name = identifier(raw.column);
      const table = raw.table === null || raw.table === undefined ? null : checkIdentifier(String(raw.table).toLowerCase());
      return { kind: 'column', table, name };
    }
    case 'unary_expr': {
      const op = String(raw.operator).toUpperCase();
      if (op !== '-' && op !== '+' && op !== 'NOT') unsupported(`operator ${op}`);
      // A negated integer literal is one literal, as in PostgreSQL: `-9223372036854775808` is
      // the BIGINT minimum, though 9223372036854775808 alone is beyond BIGINT.
      if (op === '-' && raw.expr?.type === 'bigint' && /^\d+$/.test(String(raw.expr.value))) return numberLiteral(`-${String(raw.expr.value)}`);
      const operand = convertExpr(raw.expr);
      if (op === '-' && operand.kind === 'literal' && (operand.literal === 'integer' || operand.literal === 'decimal')) {
        return negateLiteral(operand);
      }
      return { kind: 'unary', op, operand };
    }
    case 'binary_expr': return convertBinary(raw);
    case 'cast': {
      const targets: Raw[] = Array.isArray(raw.target) ? raw.target : [raw.target];
      let cast: Expr = convertExpr(raw.expr);
      for (const target of targets) cast = { kind: 'cast', operand: cast, type: castType(target) };
      return cast;
    }
    case 'date': return { kind: 'cast', operand: { kind: 'literal', literal: 'string', value: String(raw.value) }, type: 'DATE' };
    case 'timestamp': case 'datetime':
      return { kind: 'cast', operand: { kind: 'literal', literal: 'string', value: String(raw.value) }, type: 'TIMESTAMP' };
    case 'aggr_func': {
      if (raw.over !== null && raw.over !== undefined) unsupported('window functions (OVER)');
      const fn = String(raw.name).toUpperCase();
      if (fn !== 'COUNT' && fn !== 'SUM' && fn !== 'MIN' && fn !== 'MAX' && fn !== 'AVG') {
        fail('UndefinedFunction', `aggregate function ${fn.toLowerCase()}() is not supported`);
      }
      const argRaw = raw.args?.expr;
      const star = argRaw?.type === 'star';
      if (star && fn !== 'COUNT') fail('SyntaxError', `${fn.toLowerCase()}(*) is not valid`);
      return { kind: 'aggregate', fn: fn as AggregateFn, distinct: raw.args?.distinct === 'DISTINCT', arg: star ? null : convertExpr(argRaw) };
    }
    case 'function': {
      const parts = raw.name?.name;
      const name = Array.isArray(parts) ? parts.map((x: Raw) => String(x.value)).join('.') : String(raw.name);
      const args: Raw[] = Array.isArray(raw.args?.value) ? raw.args.value : [];
      if (name.toUpperCase() === 'NOT' && args.length === 1) return { kind: 'unary', op: 'NOT', operand: convertExpr(args[0]) };
      if (name.toUpperCase() === 'EXISTS') unsupported('subqueries (EXISTS)');
      fail('UndefinedFunction', `function ${name.toLowerCase()}() is not supported`);
      break;
    }
    case 'expr_list':
      if (Array.isArray(raw.value) && raw.value.some((v: Raw) => v?.ast !== undefined)) unsupported('subqueries');
      return unsupported('row value lists');
    case 'case': return unsupported('CASE expressions');
    case 'select': return unsupported('subqueries');
    case 'interval': return unsupported('INTERVAL values');
    default:
      if (raw.ast !== undefined) unsupported('subqueries');
      return unsupported(`expressions of kind ${String(raw.type)}`);
  }
}

function castType(target: Raw): SqlType {
  let name = String(target?.dataType ?? '');
  if (name.toUpperCase() === 'FLOAT' && target.length === 8) name = 'FLOAT8';
  const type = sqlTypeFromName(name);
  if (type === null) fail('UndefinedObject', `type "${name.toLowerCase()}" does not exist or is not supported`);
  return type;
}

function numberLiteral(value: unknown): Expr {
  const text = String(value);
  if (/^-?\d+$/.test(text)) {
    const n = BigInt(text);
    if (n <= 2147483647n && n >= -2147483648n) return { kind: 'literal', literal: 'integer', value: Number(n) };
    if (n <= 9223372036854775807n && n >= -9223372036854775808n) return { kind: 'literal', literal: 'integer', value: n };
    return { kind: 'literal', literal: 'decimal', value: Number(text) };
  }
  const n = Number(text);
  if (!Number.isFinite(n)) fail('NumericOverflow', `numeric literal ${text.slice(0, 30)} is out of range`);
  return { kind: 'literal', literal: 'decimal', value: n };
}

function negateLiteral(e: Expr & { kind: 'literal' }): Expr {
  const v = e.value;
  if (typeof v === 'bigint') {
    const n = -v;
    return { kind: 'literal', literal: 'integer', value: n >= -2147483648n && n <= 2147483647n ? Number(n) : n };
  }
  if (typeof v === 'number') return { kind: 'literal', literal: e.literal, value: v === 0 ? 0 : -v };
  return e;
}

function convertBinary(raw: Raw): Expr {
  const op = String(raw.operator).toUpperCase();
  const left = (): Expr => convertExpr(raw.left);
  switch (op) {
    case 'IN': case 'NOT IN': {
      const list: Raw[] | undefined = raw.right?.type === 'expr_list' ? raw.right.value : undefined;
      if (list === undefined || list.some((v) => v?.ast !== undefined)) unsupported('subqueries');
      return { kind: 'in', negated: op === 'NOT IN', operand: left(), list: list.map(convertExpr) };
    }
    case 'BETWEEN': case 'NOT BETWEEN': {
      const list: Raw[] = raw.right?.value ?? [];
      if (list.length !== 2) fail('SyntaxError', 'BETWEEN needs two bounds');
      return { kind: 'between', negated: op === 'NOT BETWEEN', operand: left(), low: convertExpr(list[0]), high: convertExpr(list[1]) };
    }
    case 'LIKE': case 'NOT LIKE': case 'ILIKE': case 'NOT ILIKE':
      if (raw.right?.type === 'escape' || raw.escape !== undefined) unsupported('LIKE … ESCAPE');
      return { kind: 'like', negated: op.startsWith('NOT'), caseInsensitive: op.endsWith('ILIKE'), operand: left(), pattern: convertExpr(raw.right) };
    case 'IS': case 'IS NOT': {
      const negated = op === 'IS NOT';
      if (raw.right?.type === 'null') return { kind: 'isNull', negated, operand: left() };
      if (raw.right?.type === 'bool') return { kind: 'isBool', negated, value: raw.right.value === true, operand: left() };
      return unsupported(`IS ${negated ? 'NOT ' : ''}DISTINCT FROM and similar forms`);
    }
    default: {
      const mapped = COMPARISONS[op];
      if (mapped === undefined) unsupported(`operator ${op}`);
      return { kind: 'binary', op: mapped, left: left(), right: convertExpr(raw.right) };
    }
  }
}

function convertInsert(raw: Raw, p: Prepassed): Statement {
  const table = tableRef(raw.table[0], p);
  if (table.asOf !== null) fail('InvalidAsOf', 'AS OF is only valid in SELECT');
  if (raw.values?.type !== 'values') unsupported('INSERT … SELECT');
  const columns: string[] | null = Array.isArray(raw.columns) && !p.syntheticInsertColumns ? raw.columns.map(columnName) : null;
  const rows = (raw.values.values as Raw[]).map((r) => (r.value as Raw[]).map((v): Expr | 'default' =>
    isDefaultKeyword(v) ? 'default' : convertExpr(v)));
  let onConflict: OnConflict | null = null;
  if (p.onConflictNothing !== null) onConflict = { action: 'nothing', target: p.onConflictNothing.target };
  if (raw.conflict !== null && raw.conflict !== undefined) {
    if (onConflict !== null) fail('SyntaxError', 'two ON CONFLICT clauses');
    const target: string[] = (raw.conflict.target?.expr ?? []).map(columnName);
    const action = raw.conflict.action?.expr;
    if (action?.type !== 'update') unsupported('this ON CONFLICT action');
    if (target.length === 0) fail('SyntaxError', 'ON CONFLICT DO UPDATE requires a conflict target, e.g. ON CONFLICT (id)');
    onConflict = { action: 'update', target, set: convertSet(action.set), where: action.where ? convertExpr(action.where) : null };
  }
  return { kind: 'insert', table, columns, rows, onConflict, returning: convertReturning(raw.returning) };
}

function convertSet(set: Raw[]): Assignment[] {
  return set.map((s) => ({ column: identifier(s.column), value: isDefaultKeyword(s.value) ? 'default' : convertExpr(s.value) }));
}

function isDefaultKeyword(v: Raw): boolean {
  return v?.type === 'column_ref' && (v.table === null || v.table === undefined) && v.column?.expr?.type === 'default' &&
    String(v.column.expr.value).toUpperCase() === 'DEFAULT';
}

function convertReturning(raw: Raw): SelectItem[] {
  return raw === null || raw === undefined ? [] : convertItems(raw.columns);
}

function convertUpdate(raw: Raw, p: Prepassed): Statement {
  if (raw.from !== null && raw.from !== undefined) unsupported('UPDATE … FROM (joins)');
  if (raw.table.length !== 1) unsupported('UPDATE of several tables');
  const table = tableRef(raw.table[0], p);
  if (table.asOf !== null) fail('InvalidAsOf', 'AS OF is only valid in SELECT');
  return {
    kind: 'update', table, set: convertSet(raw.set),
    where: raw.where ? convertExpr(raw.where) : null, returning: convertReturning(raw.returning),
  };
}

function convertDelete(raw: Raw, p: Prepassed): Statement {
  if (!Array.isArray(raw.from) || raw.from.length !== 1) unsupported('DELETE … USING (joins)');
  const table = tableRef(raw.from[0], p);
  if (table.asOf !== null) fail('InvalidAsOf', 'AS OF is only valid in SELECT');
  const where = raw.where && !p.syntheticDeleteWhere ? convertExpr(raw.where) : null;
  return { kind: 'delete', table, where, returning: convertReturning(raw.returning) };
}

function noAsOf(p: Prepassed): void {
  if (p.asOf.size > 0) fail('InvalidAsOf', 'AS OF is only valid in SELECT');
}

/** `notNull`: the pre-pass saw NOT NULL in this definition (it blanks the clause, see
 * `Prepassed.notNullDefinitions`). */
function convertColumn(def: Raw, notNull: boolean): ColumnSpec {
  const name = columnName(def.column);
  if (notNull && def.nullable?.type === 'null') fail('SyntaxError', `conflicting NULL/NOT NULL declarations for column "${name}"`);
  const dataType = String(def.definition?.dataType ?? '');
  const type = castType(def.definition);
  if (def.check !== undefined && def.check !== null) unsupported('CHECK constraints');
  if (def.reference_definition !== undefined && def.reference_definition !== null) unsupported('REFERENCES (foreign keys)');
  if (def.auto_increment !== undefined && def.auto_increment !== null) unsupported('auto-increment columns');
  if (/SERIAL/i.test(dataType)) unsupported('SERIAL columns');
  const defaultRaw = def.default_val?.value;
  return {
    name, type,
    notNull: notNull || def.nullable?.type === 'not null',
    primaryKey: typeof def.primary_key === 'string',
    unique: typeof def.unique === 'string',
    default: defaultRaw === undefined || defaultRaw === null ? null : convertExpr(defaultRaw),
  };
}

function convertCreate(raw: Raw, p: Prepassed): Statement {
  noAsOf(p);
  switch (raw.keyword) {
    case 'table': {
      if (raw.query_expr !== null && raw.query_expr !== undefined) unsupported('CREATE TABLE … AS');
      if (raw.temporary) unsupported('temporary tables');
      const name = tableName(raw.table[0]);
      const columns: ColumnSpec[] = [];
      let primaryKey: string[] | null = null;
      const uniques: string[][] = [];
      for (const [index, def] of ((raw.create_definitions ?? []) as Raw[]).entries()) {
        if (def.resource === 'column') {
          columns.push(convertColumn(def, p.notNullDefinitions.has(index)));
          continue;
        }
        if (def.resource !== 'constraint') unsupported(`table element ${String(def.resource)}`);
        const cols: string[] = (def.definition as Raw[]).map(columnName);
        switch (def.constraint_type) {
          case 'primary key':
            if (primaryKey !== null) fail('InvalidTableDefinition', `multiple primary keys for table "${name}" are not allowed`);
            primaryKey = cols;
            break;
          case 'unique': case 'unique key': case 'unique index':
            uniques.push(cols);
            break;
          default: unsupported(`${String(def.constraint_type).toUpperCase()} constraints`);
        }
      }
      return { kind: 'createTable', name, ifNotExists: raw.if_not_exists !== null && raw.if_not_exists !== undefined, columns, primaryKey, uniques };
    }
    case 'index': {
      if (raw.where !== null && raw.where !== undefined) unsupported('partial indexes');
      if (typeof raw.index !== 'string' || raw.index === '') fail('SyntaxError', 'CREATE INDEX needs a name');
      const columns: string[] = (raw.index_columns as Raw[]).map((c) => {
        if (c.type !== 'column_ref') unsupported('expression indexes');
        if (c.order_by !== null && c.order_by !== undefined) unsupported('ordered index columns');
        return identifier(c.column);
      });
      return {
        kind: 'createIndex', name: checkIdentifier(raw.index.toLowerCase()), table: tableName(raw.table),
        columns, unique: raw.index_type === 'unique', ifNotExists: raw.if_not_exists !== null && raw.if_not_exists !== undefined,
      };
    }
    default: return unsupported(`CREATE ${String(raw.keyword).toUpperCase()}`);
  }
}

function convertDrop(raw: Raw, p: Prepassed): Statement {
  noAsOf(p);
  const ifExists = typeof raw.prefix === 'string' && raw.prefix.toUpperCase().includes('IF EXISTS');
  switch (raw.keyword) {
    case 'table': return { kind: 'dropTable', names: (raw.name as Raw[]).map(tableName), ifExists };
    case 'index': {
      const names: Raw[] = Array.isArray(raw.name) ? raw.name : [raw.name];
      if (names.length !== 1) unsupported('dropping several indexes at once');
      const first = names[0];
      return { kind: 'dropIndex', name: first?.type === 'column_ref' ? columnName(first) : identifier(first?.table ?? first), ifExists };
    }
    default: return unsupported(`DROP ${String(raw.keyword).toUpperCase()}`);
  }
}

function convertAlter(raw: Raw, p: Prepassed): Statement {
  noAsOf(p);
  if (raw.keyword !== 'table') unsupported(`ALTER ${String(raw.keyword).toUpperCase()}`);
  const table = tableName(raw.table[0]);
  const actions: Raw[] = raw.expr ?? [];
  if (actions.length !== 1) unsupported('several ALTER TABLE actions in one statement');
  const action = actions[0];
  if (action.resource !== 'column') unsupported(`ALTER TABLE ${String(action.action).toUpperCase()} ${String(action.resource).toUpperCase()}`);
  if (action.action === 'add') {
    const column = convertColumn(action, p.notNullDefinitions.has(0));
    if (column.primaryKey || column.unique) unsupported('PRIMARY KEY or UNIQUE in ALTER TABLE ADD COLUMN (create an index instead)');
    return { kind: 'addColumn', table, column };
  }
  if (action.action === 'drop') return { kind: 'dropColumn', table, column: columnName(action.column), ifExists: action.if_exists !== null && action.if_exists !== undefined };
  return unsupported(`ALTER TABLE ${String(action.action).toUpperCase()}`);
}

