import { assertNever, canonicalJson, compareValues, type JsonValue, type Row, type SqlType, type Value } from '@veritydb/types';
import type { AggregateFn, Expr } from './ast.js';
import { fail } from './errors.js';
import {
  castValue, checkInt32, checkInt64, checkSize, dateFromMicros, microsFromDate, numericCast, paramType, paramValue,
  typeName, valueFromText, valueToText, isNumericType, type ExprType,
} from './values.js';

/**
 * Binding resolves names against a scope and types against PostgreSQL's rules, producing a
 * closure that evaluates an expression over a row. Type errors surface here, before any row
 * is read; runtime errors (overflow, division by zero, bad text input) surface in evaluation.
 */
export interface ScopeColumn {
  /** The table name and the alias it may be addressed by. */
  readonly table: string;
  readonly alias: string | null;
  readonly name: string;
  readonly type: SqlType;
  /** Position in the evaluated row. */
  readonly slot: number;
}

export interface Bound {
  readonly type: ExprType;
  /** True for a parameter: its JavaScript value may be converted to the context's type. */
  readonly param: boolean;
  /** Set when the expression depends on no row (literals, parameters, casts of them). */
  readonly constant: { readonly value: Value } | null;
  readonly eval: (row: Row) => Value;
}

export interface AggregateSpec {
  readonly fn: AggregateFn;
  readonly distinct: boolean;
  /** Null for COUNT(*). */
  readonly arg: Bound | null;
  readonly type: SqlType;
}

export interface GroupContext {
  /** exprKey of each GROUP BY expression → its slot in the grouped row. */
  readonly keys: readonly string[];
  readonly keyTypes: readonly ExprType[];
  /** Aggregates found while binding; slot = keys.length + index. */
  readonly aggregates: AggregateSpec[];
  readonly aggregateKeys: string[];
  /** The table scope that aggregate arguments are bound against. */
  readonly inner: BindEnv;
}

export interface BindEnv {
  readonly columns: readonly ScopeColumn[];
  readonly params: readonly unknown[];
  readonly group: GroupContext | null;
  /** Where aggregates are not allowed, the clause name for the error (e.g. "WHERE"). */
  readonly noAggregates: string | null;
}

/** Structural identity of an expression (GROUP BY matching). Column qualifiers are dropped:
 * a query reads one table, and a wrong qualifier has already failed to bind. */
export function exprKey(expr: Expr): string {
  return JSON.stringify(expr, (_k, v: unknown) => {
    if (typeof v === 'bigint') return `${v}n`;
    if (v instanceof Uint8Array) return Array.from(v);
    if (v !== null && typeof v === 'object' && (v as { kind?: unknown }).kind === 'column') return { ...(v as object), table: null };
    return v;
  });
}

function constant(type: ExprType, value: Value, param = false): Bound {
  return { type, param, constant: { value }, eval: () => value };
}

/** Wraps `fn` over `parts`, folding to a constant when every part is constant. */
function derive(type: ExprType, parts: readonly Bound[], fn: (row: Row) => Value): Bound {
  if (parts.every((p) => p.constant !== null)) return constant(type, fn([]));
  return { type, param: false, constant: null, eval: fn };
}

export function bindExpr(expr: Expr, env: BindEnv): Bound {
  if (env.group !== null) {
    const key = exprKey(expr);
    const slot = env.group.keys.indexOf(key);
    if (slot >= 0) {
      const type = env.group.keyTypes[slot] as ExprType;
      return { type, param: false, constant: null, eval: (row) => row[slot] as Value };
    }
  }
  switch (expr.kind) {
    case 'literal': return bindLiteral(expr);
    case 'param': {
      if (expr.index > env.params.length) fail('UndefinedParameter', `there is no parameter $${expr.index} (${env.params.length} given)`);
      const raw = env.params[expr.index - 1];
      return constant(paramType(raw), paramValue(raw, expr.index), true);
    }
    case 'column': return bindColumn(expr, env);
    case 'unary': return bindUnary(expr.op, bindExpr(expr.operand, env));
    case 'binary': return bindBinary(expr.op, bindExpr(expr.left, env), bindExpr(expr.right, env));
    case 'isNull': {
      const operand = bindExpr(expr.operand, env);
      return derive('BOOLEAN', [operand], (row) => (operand.eval(row) === null) !== expr.negated);
    }
    case 'isBool': {
      const operand = toBoolean(bindExpr(expr.operand, env), 'IS TRUE/FALSE');
      return derive('BOOLEAN', [operand], (row) => (operand.eval(row) === expr.value) !== expr.negated);
    }
    case 'in': return bindIn(expr.negated, bindExpr(expr.operand, env), expr.list.map((e) => bindExpr(e, env)));
    case 'between': {
      const operand = bindExpr(expr.operand, env);
      const low = bindComparison('>=', operand, bindExpr(expr.low, env));
      const high = bindComparison('<=', operand, bindExpr(expr.high, env));
      const both = bindLogic('AND', low, high);
      return expr.negated ? bindUnary('NOT', both) : both;
    }
    case 'like': return bindLike(expr.negated, expr.caseInsensitive, bindExpr(expr.operand, env), bindExpr(expr.pattern, env));
    case 'cast': return bindCast(bindExpr(expr.operand, env), expr.type, true);
    case 'aggregate': return bindAggregate(expr, env);
    default: return assertNever(expr);
  }
}

function bindLiteral(expr: Expr & { kind: 'literal' }): Bound {
  switch (expr.literal) {
    case 'integer': return constant(typeof expr.value === 'bigint' ? 'BIGINT' : 'INTEGER', expr.value);
    case 'decimal': return constant('DOUBLE', expr.value);
    case 'string': return constant('UNKNOWN', checkSize(expr.value as string));
    case 'boolean': return constant('BOOLEAN', expr.value);
    case 'null': return constant('UNKNOWN', null);
    default: return assertNever(expr.literal);
  }
}

function bindColumn(expr: Expr & { kind: 'column' }, env: BindEnv): Bound {
  const matches = env.columns.filter((c) => c.name === expr.name && (expr.table === null || expr.table === c.alias || (c.alias === null && expr.table === c.table)));
  if (matches.length === 0) {
    const qualified = expr.table === null ? `"${expr.name}"` : `"${expr.table}.${expr.name}"`;
    if (expr.table !== null && !env.columns.some((c) => c.table === expr.table || c.alias === expr.table)) {
      fail('UndefinedTable', `missing FROM-clause entry for table "${expr.table}"`);
    }
    fail('UndefinedColumn', `column ${qualified} does not exist`);
  }
  if (matches.length > 1) fail('AmbiguousColumn', `column reference "${expr.name}" is ambiguous`);
  const column = matches[0] as ScopeColumn;
  if (env.group !== null) {
    fail('GroupingError', `column "${column.table}.${column.name}" must appear in the GROUP BY clause or be used in an aggregate function`);
  }
  const slot = column.slot;
  return { type: column.type, param: false, constant: null, eval: (row) => row[slot] as Value };
}

function bindAggregate(expr: Expr & { kind: 'aggregate' }, env: BindEnv): Bound {
  if (env.noAggregates !== null) fail('GroupingError', `aggregate functions are not allowed in ${env.noAggregates}`);
  const group = env.group;
  if (group === null) return fail('GroupingError', 'aggregate functions are not allowed here');
  const key = exprKey(expr);
  let index = group.aggregateKeys.indexOf(key);
  let spec = group.aggregates[index];
  if (spec === undefined) {
    const innerEnv: BindEnv = { ...group.inner, noAggregates: 'aggregate function arguments' };
    const arg = expr.arg === null ? null : bindExpr(expr.arg, innerEnv);
    spec = { fn: expr.fn, distinct: expr.distinct, arg, type: aggregateType(expr.fn, arg) };
    index = group.aggregates.length;
    group.aggregates.push(spec);
    group.aggregateKeys.push(key);
  }
  const slot = group.keys.length + index;
  return { type: spec.type, param: false, constant: null, eval: (row) => row[slot] as Value };
}

function aggregateType(fn: AggregateFn, arg: Bound | null): SqlType {
  const t = arg === null ? 'BIGINT' : arg.type === 'UNKNOWN' ? 'TEXT' : arg.type;
  switch (fn) {
    case 'COUNT': return 'BIGINT';
    case 'SUM': case 'AVG':
      if (!isNumericType(t)) fail('UndefinedFunction', `function ${fn.toLowerCase()}(${typeName(t)}) does not exist`);
      return fn === 'AVG' || t === 'DOUBLE' ? 'DOUBLE' : 'BIGINT';
    case 'MIN': case 'MAX':
      if (t === 'JSON') fail('UndefinedFunction', `function ${fn.toLowerCase()}(json) does not exist`);
      return t;
    default: return assertNever(fn);
  }
}

/** Converts a bound expression to `to` where PostgreSQL would do so implicitly: untyped
 * literals and parameters take the context's type; numbers widen. Returns null if no rule. */
export function coerce(b: Bound, to: SqlType): Bound | null {
  if (b.type === to) return b;
  if (b.type === 'UNKNOWN' || b.param) {
    const from = b.type;
    const param = b.param;
    return derive(to, [b], (row) => convertParamLike(b.eval(row), from, to, param));
  }
  if (isNumericType(b.type) && isNumericType(to) && widens(b.type, to)) {
    return derive(to, [b], (row) => {
      const v = b.eval(row);
      return v === null ? null : numericCast(v as number | bigint, to);
    });
  }
  if (b.type === 'DATE' && to === 'TIMESTAMP') return derive(to, [b], (row) => castValue(b.eval(row), 'DATE', 'TIMESTAMP', false));
  return null;
}

function widens(from: 'INTEGER' | 'BIGINT' | 'DOUBLE', to: 'INTEGER' | 'BIGINT' | 'DOUBLE'): boolean {
  const order = { INTEGER: 0, BIGINT: 1, DOUBLE: 2 };
  return order[from] <= order[to];
}

/** A parameter's JavaScript value is sent as if it were text of the context's type
 * (node-postgres behaviour): numbers fit numeric columns, anything fits TEXT and JSON. */
export function convertParamLike(v: Value, from: ExprType, to: SqlType, param: boolean): Value {
  if (v === null) return null;
  if (from === 'UNKNOWN') return typeof v === 'string' ? valueFromText(v, to) : v;
  if (!param) return castValue(v, from, to, false);
  if (to === 'JSON' && !(v instanceof Uint8Array)) return typeof v === 'bigint' ? Number(v) : v;
  if (to === 'TEXT') return valueToText(v, from);
  if (isNumericType(from) && isNumericType(to)) {
    if (to === 'INTEGER' && typeof v === 'number' && !Number.isInteger(v)) fail('InvalidTextRepresentation', `invalid input syntax for type integer: "${v}"`);
    if (to === 'BIGINT' && typeof v === 'number' && !Number.isInteger(v)) fail('InvalidTextRepresentation', `invalid input syntax for type bigint: "${v}"`);
    return numericCast(v as number | bigint, to);
  }
  if (from === 'TIMESTAMP' && to === 'DATE') return dateFromMicros(v as bigint);
  if (from === 'INTEGER' && to === 'TIMESTAMP') fail('TypeMismatch', 'a number parameter cannot be a timestamp: pass a Date or a timestamp string');
  return castValue(v, from, to, false);
}

function toBoolean(b: Bound, what: string): Bound {
  const c = coerce(b, 'BOOLEAN');
  if (c === null) fail('TypeMismatch', `argument of ${what} must be type boolean, not type ${typeName(b.type)}`);
  return c;
}

function bindUnary(op: '-' | '+' | 'NOT', operand: Bound): Bound {
  if (op === 'NOT') {
    const b = toBoolean(operand, 'NOT');
    return derive('BOOLEAN', [b], (row) => {
      const v = b.eval(row);
      return v === null ? null : !v;
    });
  }
  const b = operand.type === 'UNKNOWN' ? (coerce(operand, 'DOUBLE') as Bound) : operand;
  if (!isNumericType(b.type)) fail('UndefinedFunction', `operator does not exist: ${op} ${typeName(b.type)}`);
  if (op === '+') return b;
  const type = b.type;
  return derive(type, [b], (row) => {
    const v = b.eval(row);
    if (v === null) return null;
    if (type === 'INTEGER') return checkInt32(-(v as number));
    if (type === 'BIGINT') return checkInt64(-(v as bigint));
    return -(v as number);
  });
}

function numericResult(a: ExprType, b: ExprType): 'INTEGER' | 'BIGINT' | 'DOUBLE' {
  if (a === 'DOUBLE' || b === 'DOUBLE') return 'DOUBLE';
  if (a === 'BIGINT' || b === 'BIGINT') return 'BIGINT';
  return 'INTEGER';
}

/** For binary operators: untyped sides take the other side's type (both untyped: TEXT). */
function unify(left: Bound, right: Bound): [Bound, Bound] {
  if (left.type === 'UNKNOWN' && right.type === 'UNKNOWN') return [coerce(left, 'TEXT') as Bound, coerce(right, 'TEXT') as Bound];
  // A parameter takes the type of the other side, as PostgreSQL infers an untyped parameter's type.
  if (left.type === 'UNKNOWN' || (left.param && right.type !== 'UNKNOWN' && !right.param && left.type !== right.type)) {
    const c = coerce(left, right.type as SqlType);
    if (c !== null) return [c, right];
  }
  if (right.type === 'UNKNOWN' || (right.param && !left.param && left.type !== right.type)) {
    const c = coerce(right, left.type as SqlType);
    if (c !== null) return [left, c];
  }
  return [left, right];
}

function bindBinary(op: Expr & { kind: 'binary' } extends { op: infer O } ? O : never, left: Bound, right: Bound): Bound {
  switch (op) {
    case 'AND': case 'OR': return bindLogic(op, toBoolean(left, op), toBoolean(right, op));
    case '=': case '<>': case '<': case '<=': case '>': case '>=': return bindComparison(op, left, right);
    case '||': return bindConcat(left, right);
    case '+': case '-': case '*': case '/': case '%': return bindArithmetic(op, left, right);
    default: return assertNever(op);
  }
}

function bindLogic(op: 'AND' | 'OR', l: Bound, r: Bound): Bound {
  return derive('BOOLEAN', [l, r], op === 'AND'
    ? (row) => {
        const a = l.eval(row);
        if (a === false) return false;
        const b = r.eval(row);
        if (b === false) return false;
        return a === null || b === null ? null : true;
      }
    : (row) => {
        const a = l.eval(row);
        if (a === true) return true;
        const b = r.eval(row);
        if (b === true) return true;
        return a === null || b === null ? null : false;
      });
}

/** Comparison of two values of compatible types, or a type error naming the operator. */
export function comparable(op: string, leftIn: Bound, rightIn: Bound): [Bound, Bound] {
  let [left, right] = unify(leftIn, rightIn);
  if (left.type === 'DATE' && right.type === 'TIMESTAMP') left = coerce(left, 'TIMESTAMP') as Bound;
  if (right.type === 'DATE' && left.type === 'TIMESTAMP') right = coerce(right, 'TIMESTAMP') as Bound;
  const ok = left.type === right.type || (isNumericType(left.type) && isNumericType(right.type));
  if (!ok) fail('UndefinedFunction', `operator does not exist: ${typeName(left.type)} ${op} ${typeName(right.type)}`);
  if (left.type === 'JSON' && op !== '=' && op !== '<>') fail('UndefinedFunction', `operator does not exist: json ${op} json`);
  return [left, right];
}

function bindComparison(op: '=' | '<>' | '<' | '<=' | '>' | '>=', leftIn: Bound, rightIn: Bound): Bound {
  const [left, right] = comparable(op, leftIn, rightIn);
  const test = comparisonTest(op);
  return derive('BOOLEAN', [left, right], (row) => {
    const a = left.eval(row);
    if (a === null) return null;
    const b = right.eval(row);
    if (b === null) return null;
    return test(compareValues(a, b));
  });
}

export function comparisonTest(op: '=' | '<>' | '<' | '<=' | '>' | '>='): (c: number) => boolean {
  switch (op) {
    case '=': return (c) => c === 0;
    case '<>': return (c) => c !== 0;
    case '<': return (c) => c < 0;
    case '<=': return (c) => c <= 0;
    case '>': return (c) => c > 0;
    case '>=': return (c) => c >= 0;
    default: return assertNever(op);
  }
}

function bindIn(negated: boolean, operandIn: Bound, list: readonly Bound[]): Bound {
  const pairs = list.map((item) => comparable('=', operandIn, item));
  return derive('BOOLEAN', [operandIn, ...list], (row) => {
    let sawNull = false;
    for (const [l, r] of pairs) {
      const a = l.eval(row);
      const b = r.eval(row);
      if (a === null || b === null) { sawNull = true; continue; }
      if (compareValues(a, b) === 0) return !negated;
    }
    return sawNull ? null : negated;
  });
}

function bindConcat(leftIn: Bound, rightIn: Bound): Bound {
  if (leftIn.type === 'BYTES' && rightIn.type === 'BYTES') {
    return derive('BYTES', [leftIn, rightIn], (row) => {
      const a = leftIn.eval(row) as Uint8Array | null;
      const b = rightIn.eval(row) as Uint8Array | null;
      if (a === null || b === null) return null;
      const out = new Uint8Array(a.length + b.length);
      out.set(a, 0);
      out.set(b, a.length);
      return checkSize(out);
    });
  }
  const textual = (t: ExprType): boolean => t === 'TEXT' || t === 'UNKNOWN';
  if (!textual(leftIn.type) && !textual(rightIn.type)) {
    fail('UndefinedFunction', `operator does not exist: ${typeName(leftIn.type)} || ${typeName(rightIn.type)}`);
  }
  const text = (b: Bound): ((row: Row) => string | null) => (row) => {
    const v = b.eval(row);
    return v === null ? null : valueToText(v, b.type);
  };
  const l = text(leftIn);
  const r = text(rightIn);
  return derive('TEXT', [leftIn, rightIn], (row) => {
    const a = l(row);
    const b = r(row);
    return a === null || b === null ? null : checkSize(a + b);
  });
}

const DAY_MICROS = 86_400_000_000n;

/** date ± integer → date and date - date → integer (days), as in PostgreSQL. */
function bindDateArithmetic(op: '+' | '-', left: Bound, right: Bound): Bound | null {
  const days = (b: Bound): Bound | null => (b.type === 'INTEGER' || b.type === 'UNKNOWN' || b.param ? coerce(b, 'INTEGER') : null);
  const toDays = (v: Value): bigint => microsFromDate(v as string) / DAY_MICROS;
  const fromDays = (n: bigint): string => {
    const micros = n * DAY_MICROS;
    if (n < -2_000_000n || n > 2_900_000n) fail('NumericOverflow', 'date out of range');
    return dateFromMicros(micros);
  };
  if (left.type === 'DATE' && right.type === 'DATE' && op === '-') {
    return derive('INTEGER', [left, right], (row) => {
      const a = left.eval(row);
      const b = right.eval(row);
      return a === null || b === null ? null : checkInt32(Number(toDays(a) - toDays(b)));
    });
  }
  const [date, other] = left.type === 'DATE' ? [left, right] : op === '+' && right.type === 'DATE' ? [right, left] : [null, null];
  if (date === null || other === null) return null;
  const n = days(other);
  if (n === null || n.type !== 'INTEGER') return null;
  const sign = op === '+' ? 1n : -1n;
  return derive('DATE', [date, n], (row) => {
    const a = date.eval(row);
    const b = n.eval(row);
    return a === null || b === null ? null : fromDays(toDays(a) + sign * BigInt(b as number));
  });
}

function bindArithmetic(op: '+' | '-' | '*' | '/' | '%', leftIn: Bound, rightIn: Bound): Bound {
  if ((op === '+' || op === '-') && (leftIn.type === 'DATE' || rightIn.type === 'DATE')) {
    const dated = bindDateArithmetic(op, leftIn, rightIn);
    if (dated !== null) return dated;
  }
  let [left, right] = unify(leftIn, rightIn);
  if (left.type === 'UNKNOWN' || right.type === 'UNKNOWN' || left.type === 'TEXT') {
    fail('UndefinedFunction', `operator does not exist: ${typeName(left.type)} ${op} ${typeName(right.type)}`);
  }
  if (!isNumericType(left.type) || !isNumericType(right.type)) {
    fail('UndefinedFunction', `operator does not exist: ${typeName(left.type)} ${op} ${typeName(right.type)}`);
  }
  const type = numericResult(left.type, right.type);
  if (type === 'DOUBLE' && op === '%') fail('UndefinedFunction', 'operator does not exist: double precision % double precision');
  left = coerce(left, type) as Bound;
  right = coerce(right, type) as Bound;
  const apply = arithmetic(op, type);
  return derive(type, [left, right], (row) => {
    const a = left.eval(row);
    if (a === null) return null;
    const b = right.eval(row);
    if (b === null) return null;
    return apply(a as number & bigint, b as number & bigint);
  });
}

function arithmetic(op: '+' | '-' | '*' | '/' | '%', type: 'INTEGER' | 'BIGINT' | 'DOUBLE'): (a: number & bigint, b: number & bigint) => Value {
  if (type === 'BIGINT') {
    return (a: bigint, b: bigint) => {
      switch (op) {
        case '+': return checkInt64(a + b);
        case '-': return checkInt64(a - b);
        case '*': return checkInt64(a * b);
        case '/': if (b === 0n) fail('DivisionByZero', 'division by zero'); return checkInt64(a / b);
        case '%': if (b === 0n) fail('DivisionByZero', 'division by zero'); return a % b;
        default: return assertNever(op);
      }
    };
  }
  if (type === 'INTEGER') {
    return (a: number, b: number) => {
      switch (op) {
        case '+': return checkInt32(a + b);
        case '-': return checkInt32(a - b);
        case '*': return checkInt32(Number(BigInt(a) * BigInt(b)) === a * b ? a * b : Number(BigInt(a) * BigInt(b)));
        case '/': if (b === 0) fail('DivisionByZero', 'division by zero'); return checkInt32(Math.trunc(a / b));
        case '%': if (b === 0) fail('DivisionByZero', 'division by zero'); return checkInt32(a % b);
        default: return assertNever(op);
      }
    };
  }
  return (a: number, b: number) => {
    let r: number;
    switch (op) {
      case '+': r = a + b; break;
      case '-': r = a - b; break;
      case '*': r = a * b; break;
      case '/': if (b === 0) fail('DivisionByZero', 'division by zero'); r = a / b; break;
      case '%': return fail('UndefinedFunction', 'operator does not exist: double precision % double precision');
      default: return assertNever(op);
    }
    if (!Number.isFinite(r) && Number.isFinite(a) && Number.isFinite(b)) fail('NumericOverflow', 'value out of range: overflow');
    return r;
  };
}

function bindLike(negated: boolean, caseInsensitive: boolean, operandIn: Bound, patternIn: Bound): Bound {
  const operand = coerce(operandIn, 'TEXT');
  const pattern = coerce(patternIn, 'TEXT');
  if (operand === null || pattern === null || operand.type !== 'TEXT') {
    fail('UndefinedFunction', `operator does not exist: ${typeName(operandIn.type)} ${caseInsensitive ? '~~*' : '~~'} ${typeName(patternIn.type)}`);
  }
  const cached = pattern.constant !== null && pattern.constant.value !== null ? likePattern(pattern.constant.value as string, caseInsensitive) : null;
  return derive('BOOLEAN', [operand, pattern], (row) => {
    const v = operand.eval(row);
    if (v === null) return null;
    const p = pattern.eval(row);
    if (p === null) return null;
    const compiled = cached ?? likePattern(p as string, caseInsensitive);
    return likeMatch(caseInsensitive ? Array.from((v as string).toLowerCase()) : Array.from(v as string), compiled) !== negated;
  });
}

/** A LIKE pattern as code points: ANY (%), ONE (_) or a literal character (\ escapes). */
type LikeToken = typeof LIKE_ANY | typeof LIKE_ONE | string;
const LIKE_ANY = 0;
const LIKE_ONE = 1;

export function likePattern(pattern: string, caseInsensitive: boolean): LikeToken[] {
  const chars = Array.from(caseInsensitive ? pattern.toLowerCase() : pattern);
  const tokens: LikeToken[] = [];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    if (ch === '\\') {
      i++;
      if (i >= chars.length) fail('InvalidTextRepresentation', 'LIKE pattern must not end with escape character');
      tokens.push(chars[i] as string);
    } else if (ch === '%') {
      if (tokens[tokens.length - 1] !== LIKE_ANY) tokens.push(LIKE_ANY);
    } else tokens.push(ch === '_' ? LIKE_ONE : ch);
  }
  return tokens;
}

/** Wildcard matching in O(text × pattern) time at worst, with no regular-expression
 * backtracking, so a hostile pattern cannot stall the replica. */
export function likeMatch(text: readonly string[], pattern: readonly LikeToken[]): boolean {
  let t = 0;
  let p = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    const token = pattern[p];
    if (token !== undefined && token !== LIKE_ANY && (token === LIKE_ONE || token === text[t])) {
      t++;
      p++;
    } else if (token === LIKE_ANY) {
      starP = p++;
      starT = t;
    } else if (starP >= 0) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (pattern[p] === LIKE_ANY) p++;
  return p === pattern.length;
}

function bindCast(operand: Bound, to: SqlType, explicit: boolean): Bound {
  if (operand.param || operand.type === 'UNKNOWN') {
    const c = coerce(operand, to);
    if (c !== null) return c;
  }
  const from = operand.type;
  if (from !== to && from !== 'UNKNOWN' && to !== 'TEXT') {
    // Illegal pairs fail at bind time, before any row is read.
    const legal = castLegal(from, to);
    if (!legal) fail('TypeMismatch', `cannot cast type ${typeName(from)} to ${typeName(to)}`);
  }
  return derive(to, [operand], (row) => castValue(operand.eval(row), from, to, explicit));
}

function castLegal(from: SqlType, to: SqlType): boolean {
  if (from === 'TEXT') return true;
  if (isNumericType(from) && isNumericType(to)) return true;
  if (from === 'INTEGER' && to === 'BOOLEAN') return true;
  if (from === 'BOOLEAN' && to === 'INTEGER') return true;
  if ((from === 'DATE' && to === 'TIMESTAMP') || (from === 'TIMESTAMP' && to === 'DATE')) return true;
  return false;
}

/** Converts a value for storage in a column of `to` (INSERT/UPDATE assignment rules). */
export function bindAssignment(b: Bound, to: SqlType, column: string): Bound {
  if (b.type === to) return b;
  if (b.type === 'UNKNOWN' || b.param) return coerce(b, to) as Bound;
  const from = b.type;
  const allowed = to === 'TEXT' || (isNumericType(from) && isNumericType(to)) ||
    (from === 'DATE' && to === 'TIMESTAMP') || (from === 'TIMESTAMP' && to === 'DATE');
  if (!allowed) fail('TypeMismatch', `column "${column}" is of type ${typeName(to)} but expression is of type ${typeName(from)}`);
  return derive(to, [b], (row) => castValue(b.eval(row), from, to, false));
}

/** The accumulating state of one aggregate in one group. */
export interface Accumulator {
  add(row: Row): void;
  result(): Value;
}

export function newAccumulator(spec: AggregateSpec): Accumulator {
  const seen = spec.distinct ? new Set<string>() : null;
  const arg = spec.arg;
  const value = (row: Row): Value | undefined => {
    if (arg === null) return true;
    const v = arg.eval(row);
    if (v === null) return undefined;
    if (seen !== null) {
      const k = valueKey(v);
      if (seen.has(k)) return undefined;
      seen.add(k);
    }
    return v;
  };
  switch (spec.fn) {
    case 'COUNT': {
      let n = 0n;
      return { add: (row) => { if (value(row) !== undefined) n++; }, result: () => n };
    }
    case 'SUM': {
      let sum: number | bigint | null = null;
      const isDouble = spec.type === 'DOUBLE';
      return {
        add: (row) => {
          const v = value(row);
          if (v === undefined) return;
          if (isDouble) sum = ((sum as number | null) ?? 0) + (v as number);
          else sum = checkInt64(((sum as bigint | null) ?? 0n) + BigInt(v as number | bigint));
        },
        result: () => sum,
      };
    }
    case 'AVG': {
      let total = 0;
      let exact = 0n;
      let count = 0;
      const isInteger = arg !== null && (arg.type === 'INTEGER' || arg.type === 'BIGINT');
      return {
        add: (row) => {
          const v = value(row);
          if (v === undefined) return;
          count++;
          if (isInteger) exact += BigInt(v as number | bigint);
          else total += v as number;
        },
        result: () => (count === 0 ? null : isInteger ? Number(exact) / count : total / count),
      };
    }
    case 'MIN': case 'MAX': {
      let best: Value | undefined;
      const sign = spec.fn === 'MIN' ? -1 : 1;
      return {
        add: (row) => {
          const v = value(row);
          if (v === undefined) return;
          if (best === undefined || Math.sign(compareValues(v, best)) === sign) best = v;
        },
        result: () => (best === undefined ? null : best),
      };
    }
    default: return assertNever(spec.fn);
  }
}

/** A string that is equal exactly for equal values (for DISTINCT, GROUP BY, dedup). */
export function valueKey(v: Value): string {
  if (v === null) return 'n';
  switch (typeof v) {
    case 'boolean': return v ? 'T' : 'F';
    case 'number': return Number.isInteger(v) ? `i${v}` : `d${v}`;
    case 'bigint': return `i${v}`;
    case 'string': return `s${v}`;
    default:
      if (v instanceof Uint8Array) return `b${Array.from(v).join(',')}`;
      return `j${canonicalJson(v as JsonValue)}`;
  }
}

export function rowKey(values: readonly Value[]): string {
  let key = values.length === 0 ? '' : valueKey(values[0] as Value);
  for (let i = 1; i < values.length; i++) key += `\u0000${valueKey(values[i] as Value)}`;
  return key;
}

