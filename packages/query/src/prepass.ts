import { assert } from '@veritydb/types';
import type { AsOf } from './ast.js';
import { lineColumn, sqlError, type Result, type SqlError } from './errors.js';
import { parseTimestampText } from './values.js';

/**
 * The pre-pass runs before node-sql-parser. It lexes the text once (strings, quoted names and
 * comments are skipped correctly) and handles what the parser cannot:
 *   - `?` placeholders become `$1, $2, …` (mixing `?` and `$n` is refused);
 *   - `AS OF POSITION n` / `AS OF TIMESTAMP '…'` after a table name are recorded and removed;
 *   - `ON CONFLICT [(cols)] DO NOTHING` is recorded and removed (the parser rejects it);
 *   - `EXPLAIN`, `SHOW TABLES`, `DESCRIBE t`, `SHOW COLUMNS FROM t` are recognised;
 *   - `CREATE PROJECTION name AS SELECT …`, `DROP PROJECTION [IF EXISTS] name` and
 *     `SHOW PROJECTIONS` are recognised (the projection's SELECT is then pre-passed on its own,
 *     with the prefix blanked so positions stay exact);
 *   - type names `BYTES`, `BLOB`, `DOUBLE` become `BYTEA`, `BYTEA`, `DOUBLE PRECISION`;
 *   - `INSERT INTO t VALUES … ON CONFLICT … DO UPDATE` gets a placeholder column list, and
 *     `DELETE FROM t RETURNING …` a `WHERE TRUE` (grammar gaps; both are flagged and undone);
 *   - `-` directly before an integer literal beyond 2^53 gets a space, so the parser sees a
 *     negation of an exact literal instead of folding it into a double;
 *   - `NOT NULL` in column definitions is recorded and blanked (see `notNullDefinitions`).
 * Every rewrite is recorded in an offset map, so parser errors point into the original text.
 */

type TokenKind = 'word' | 'quoted' | 'string' | 'number' | 'dollar' | 'question' | 'punct';
interface Token {
  readonly kind: TokenKind;
  readonly start: number;
  readonly end: number;
  /** Upper-cased for words, unescaped for strings and quoted names, raw otherwise. */
  readonly text: string;
}

export interface Prepassed {
  readonly original: string;
  /** Text for node-sql-parser. */
  readonly text: string;
  readonly explain: boolean;
  readonly special: Special | null;
  /** Table name (lower case) → snapshot, from `AS OF` clauses. */
  readonly asOf: ReadonlyMap<string, AsOf>;
  readonly onConflictNothing: { readonly target: readonly string[] | null } | null;
  /** The pre-pass inserted a placeholder column list into `INSERT INTO t VALUES … ON CONFLICT
   * … DO UPDATE` (the parser only accepts DO UPDATE after a column list): the statement has none. */
  readonly syntheticInsertColumns: boolean;
  /** The pre-pass inserted `WHERE TRUE` into `DELETE FROM t RETURNING …` (the parser reads
   * RETURNING as a table alias there): the statement has no WHERE. */
  readonly syntheticDeleteWhere: boolean;
  /** Indexes (in the parser's definition list: columns and table constraints in order) of the
   * column definitions that say NOT NULL. The pre-pass blanks these clauses: node-sql-parser
   * merges a column's clauses so that a later DEFAULT forgets an earlier NOT NULL (and a later
   * NOT NULL forgets an earlier DEFAULT). In `ALTER TABLE … ADD COLUMN` the column is index 0. */
  readonly notNullDefinitions: ReadonlySet<number>;
  readonly paramCount: number;
  /** Maps an offset in `text` back to the original text. */
  toOriginal(offset: number): number;
}

export type Special =
  | { readonly kind: 'showTables' }
  | { readonly kind: 'showProjections' }
  | { readonly kind: 'describe'; readonly table: string }
  | { readonly kind: 'dropProjection'; readonly name: string; readonly ifExists: boolean }
  /** `bodyStart`: offset of the SELECT after `AS`. */
  | { readonly kind: 'createProjection'; readonly name: string; readonly bodyStart: number };

interface Chunk {
  readonly outStart: number;
  readonly inStart: number;
  readonly copied: boolean;
}

const SAFE_INTEGER_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** Bound on tokens, so a pathological text cannot make the pre-pass unbounded. */
const TOKENS_MAX = 1_000_000;

export function prepass(sql: string): Result<Prepassed> {
  const lexed = lex(sql);
  if (!lexed.ok) return lexed;
  const tokens = lexed.value;
  const at = (offset: number): { line: number; column: number } => lineColumn(sql, offset);
  const err = (code: SqlError['code'], message: string, offset: number): Result<Prepassed> =>
    ({ ok: false, error: sqlError(code, message, at(offset)) });

  // Statement separators: one statement per call (a trailing `;` is fine).
  const semicolon = tokens.findIndex((t) => t.kind === 'punct' && t.text === ';');
  if (semicolon >= 0 && tokens.slice(semicolon).some((t) => !(t.kind === 'punct' && t.text === ';'))) {
    const next = tokens.slice(semicolon).find((t) => !(t.kind === 'punct' && t.text === ';')) as Token;
    return err('Unsupported', 'several statements in one text are not supported: send them as a batch', next.start);
  }

  const word = (i: number): string | null => {
    const t = tokens[i];
    return t !== undefined && t.kind === 'word' ? t.text : null;
  };
  const name = (i: number): string | null => {
    const t = tokens[i];
    if (t === undefined) return null;
    if (t.kind === 'word') return t.text.toLowerCase();
    // Quoted names fold too: node-sql-parser does not tell quoted table names apart.
    return t.kind === 'quoted' ? t.text.toLowerCase() : null;
  };
  const endsAt = (i: number): boolean => tokens.slice(i).every((t) => t.kind === 'punct' && t.text === ';');

  // Introspection statements the parser does not know.
  if (word(0) === 'SHOW' && word(1) === 'TABLES' && endsAt(2)) return ok(sql, sql, [], { kind: 'showTables' });
  if ((word(0) === 'DESCRIBE' || word(0) === 'DESC') && name(1) !== null && endsAt(2)) {
    return ok(sql, sql, [], { kind: 'describe', table: name(1) as string });
  }
  if (word(0) === 'SHOW' && word(1) === 'COLUMNS' && (word(2) === 'FROM' || word(2) === 'IN') && name(3) !== null && endsAt(4)) {
    return ok(sql, sql, [], { kind: 'describe', table: name(3) as string });
  }
  if (word(0) === 'SHOW' && word(1) === 'PROJECTIONS' && endsAt(2)) return ok(sql, sql, [], { kind: 'showProjections' });
  if ((word(0) === 'CREATE' || word(0) === 'DROP') && word(1) === 'MATERIALIZED' && word(2) === 'VIEW') {
    return err('Unsupported', `${word(0) as string} MATERIALIZED VIEW is not supported: use ${word(0) as string} PROJECTION`, (tokens[0] as Token).start);
  }
  if (word(0) === 'DROP' && word(1) === 'PROJECTION') {
    const ifExists = word(2) === 'IF' && word(3) === 'EXISTS';
    const at = ifExists ? 4 : 2;
    const target = name(at);
    if (target === null || !endsAt(at + 1)) return err('SyntaxError', 'expected DROP PROJECTION [IF EXISTS] <name>', (tokens[Math.min(at, tokens.length - 1)] as Token).start);
    return ok(sql, sql, [], { kind: 'dropProjection', name: target, ifExists });
  }
  if (word(0) === 'CREATE' && word(1) === 'PROJECTION') {
    const target = name(2);
    const as = tokens[3];
    if (target === null || word(3) !== 'AS' || as === undefined || tokens[4] === undefined) {
      return err('SyntaxError', 'expected CREATE PROJECTION <name> AS SELECT …', (tokens[Math.min(3, tokens.length - 1)] as Token).start);
    }
    return ok(sql, sql, [], { kind: 'createProjection', name: target, bodyStart: as.end });
  }

  const out: string[] = [];
  const chunks: Chunk[] = [];
  let outLength = 0;
  let copiedUpTo = 0;
  const replace = (start: number, end: number, replacement: string): void => {
    assert(start >= copiedUpTo && end >= start, 'pre-pass rewrites go left to right');
    if (start > copiedUpTo) {
      chunks.push({ outStart: outLength, inStart: copiedUpTo, copied: true });
      out.push(sql.slice(copiedUpTo, start));
      outLength += start - copiedUpTo;
    }
    chunks.push({ outStart: outLength, inStart: start, copied: false });
    out.push(replacement);
    outLength += replacement.length;
    copiedUpTo = end;
  };

  let explain = false;
  let first = 0;
  if (word(0) === 'EXPLAIN') {
    explain = true;
    first = 1;
    const t = tokens[0] as Token;
    replace(t.start, t.end, ' ');
  }

  const asOf = new Map<string, AsOf>();
  let onConflictNothing: { target: readonly string[] | null } | null = null;
  let questionCount = 0;
  let dollarMax = 0;
  const castParens: boolean[] = [];
  const isPunct = (i: number, text: string): boolean => {
    const t = tokens[i];
    return t !== undefined && t.kind === 'punct' && t.text === text;
  };

  // `INSERT INTO t VALUES (…) ON CONFLICT … DO UPDATE`: insert a placeholder column list with
  // as many names as the first row has values, before VALUES.
  let insertColumnsAt = -1;
  let insertColumnsCount = 0;
  if (word(first) === 'INSERT' && word(first + 1) === 'INTO' && name(first + 2) !== null) {
    let v = first + 3;
    if (isPunct(v, '.') && name(v + 1) !== null) v += 2;
    const doUpdate = tokens.some((_, k) => word(k) === 'DO' && word(k + 1) === 'UPDATE' && k > v);
    if (word(v) === 'VALUES' && isPunct(v + 1, '(') && doUpdate) {
      // Every row must have as many values as the first (the parser checks rows against the list).
      let row = v + 1;
      for (;;) {
        let depth = 0;
        let count = 1;
        let k = row;
        for (; k < tokens.length; k++) {
          if (isPunct(k, '(')) depth++;
          else if (isPunct(k, ')')) { depth--; if (depth === 0) break; }
          else if (depth === 1 && isPunct(k, ',')) count++;
        }
        if (insertColumnsAt < 0) {
          insertColumnsAt = v;
          insertColumnsCount = count;
        } else if (count !== insertColumnsCount) {
          return err('SyntaxError', 'VALUES lists must all be the same length', (tokens[row + 1] ?? tokens[row] as Token).start);
        }
        if (!isPunct(k + 1, ',') || !isPunct(k + 2, '(')) break;
        row = k + 2;
      }
    }
  }
  // `DELETE FROM t RETURNING …` without WHERE: insert `WHERE TRUE` before RETURNING.
  let deleteWhereAt = -1;
  if (word(first) === 'DELETE') {
    const returning = tokens.findIndex((_, k) => k > first && word(k) === 'RETURNING');
    if (returning > 0 && !tokens.slice(first, returning).some((t) => t.kind === 'word' && t.text === 'WHERE')) deleteWhereAt = returning;
  }
  // Column definitions: CREATE TABLE elements at parenthesis depth 1, or the column of
  // ALTER TABLE … ADD at depth 0.
  const createTable = word(first) === 'CREATE' && word(first + 1) === 'TABLE';
  const alterAdd = word(first) === 'ALTER' && word(first + 1) === 'TABLE' && tokens.some((t) => t.kind === 'word' && t.text === 'ADD');
  const notNullDefinitions = new Set<number>();
  let depth = 0;
  let definition = 0;

  for (let i = first; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    const prev = tokens[i - 1];
    if (i === insertColumnsAt) {
      const names = Array.from({ length: insertColumnsCount }, (_, k) => `c${k + 1}`).join(', ');
      replace(t.start, t.start, `(${names}) `);
    }
    if (i === deleteWhereAt) replace(t.start, t.start, 'WHERE TRUE ');
    if (t.kind === 'punct') {
      if (t.text === '(') depth++;
      if (t.text === ')') depth--;
      if (t.text === ',' && depth === 1) definition++;
    }
    if ((createTable ? depth === 1 : alterAdd && depth === 0) && word(i) === 'NOT' && word(i + 1) === 'NULL' && !(prev !== undefined && prev.kind === 'word' && prev.text === 'IS')) {
      notNullDefinitions.add(createTable ? definition : 0);
      replace(t.start, (tokens[i + 1] as Token).end, ' ');
      i++;
      continue;
    }
    const next = tokens[i + 1];
    if (t.kind === 'punct' && t.text === '-' && next !== undefined && next.kind === 'number' && next.start === t.end &&
        /^\d+$/.test(next.text) && BigInt(next.text) > SAFE_INTEGER_MAX) {
      replace(t.start, t.end, '- ');
      continue;
    }
    if (t.kind === 'question') {
      if (dollarMax > 0) return err('InvalidParameter', 'cannot mix ? and $n placeholders', t.start);
      questionCount++;
      replace(t.start, t.end, `$${questionCount}`);
      continue;
    }
    if (t.kind === 'dollar') {
      if (questionCount > 0) return err('InvalidParameter', 'cannot mix ? and $n placeholders', t.start);
      const n = Number(t.text.slice(1));
      if (!Number.isSafeInteger(n) || n < 1 || n > 65535) return err('InvalidParameter', `invalid parameter ${t.text}`, t.start);
      dollarMax = Math.max(dollarMax, n);
      continue;
    }
    if (t.kind === 'punct') {
      if (t.text === '(') castParens.push(prev !== undefined && prev.kind === 'word' && prev.text === 'CAST');
      if (t.text === ')') castParens.pop();
      continue;
    }
    if (t.kind !== 'word') continue;
    if (t.text === 'AS' && word(i + 1) === 'OF') {
      const target = name(i - 1);
      const what = word(i + 2);
      const arg = tokens[i + 3];
      if (target === null || prev === undefined || (what !== 'POSITION' && what !== 'TIMESTAMP') || arg === undefined) {
        return err('SyntaxError', 'expected AS OF POSITION <number> or AS OF TIMESTAMP \'<time>\' after a table name', t.start);
      }
      if (asOf.has(target)) return err('InvalidAsOf', `table "${target}" has two AS OF clauses`, t.start);
      if (what === 'POSITION') {
        if (arg.kind !== 'number' || !/^\d+$/.test(arg.text) || BigInt(arg.text) < 1n) {
          return err('InvalidAsOf', 'AS OF POSITION needs a positive integer literal', arg.start);
        }
        asOf.set(target, { kind: 'position', position: BigInt(arg.text) });
      } else {
        if (arg.kind !== 'string') return err('InvalidAsOf', 'AS OF TIMESTAMP needs a quoted timestamp literal', arg.start);
        const micros = parseTimestampText(arg.text);
        if (micros === null) return err('InvalidDatetimeFormat', `invalid timestamp in AS OF: "${arg.text}"`, arg.start);
        asOf.set(target, { kind: 'timestamp', timestampMicros: micros });
      }
      replace(t.start, arg.end, ' ');
      i += 3;
      continue;
    }
    if (t.text === 'ON' && word(i + 1) === 'CONFLICT') {
      let j = i + 2;
      let target: string[] | null = null;
      const open = tokens[j];
      if (open !== undefined && open.kind === 'punct' && open.text === '(') {
        target = [];
        j++;
        for (;;) {
          const col = name(j);
          if (col === null) break;
          target.push(col);
          j++;
          const sep = tokens[j];
          if (sep !== undefined && sep.kind === 'punct' && sep.text === ',') j++;
          else break;
        }
        const close = tokens[j];
        if (close === undefined || close.kind !== 'punct' || close.text !== ')' || target.length === 0) continue;
        j++;
      }
      if (word(j) === 'DO' && word(j + 1) === 'NOTHING') {
        onConflictNothing = { target };
        replace(t.start, (tokens[j + 1] as Token).end, ' ');
        i = j + 1;
      }
      continue;
    }
    const typeContext = prev !== undefined && (
      (prev.kind === 'punct' && prev.text === '::') ||
      (prev.kind === 'word' && prev.text === 'AS' && castParens[castParens.length - 1] === true) ||
      ((prev.kind === 'word' || prev.kind === 'quoted') && isDefinitionStart(tokens[i - 2])));
    if (typeContext && (t.text === 'BYTES' || t.text === 'BLOB')) replace(t.start, t.end, 'BYTEA');
    if (typeContext && t.text === 'DOUBLE' && word(i + 1) !== 'PRECISION') replace(t.start, t.end, 'DOUBLE PRECISION');
  }
  if (copiedUpTo < sql.length) {
    chunks.push({ outStart: outLength, inStart: copiedUpTo, copied: true });
    out.push(sql.slice(copiedUpTo));
  }
  const text = out.join('');
  return {
    ok: true,
    value: {
      original: sql, text, explain, special: null, asOf, onConflictNothing,
      syntheticInsertColumns: insertColumnsAt >= 0, syntheticDeleteWhere: deleteWhereAt >= 0, notNullDefinitions,
      paramCount: Math.max(questionCount, dollarMax),
      toOriginal: (offset) => mapOffset(chunks, offset),
    },
  };
}

function isDefinitionStart(t: Token | undefined): boolean {
  if (t === undefined) return false;
  if (t.kind === 'punct') return t.text === '(' || t.text === ',';
  return t.kind === 'word' && (t.text === 'COLUMN' || t.text === 'ADD');
}

function ok(original: string, text: string, chunks: Chunk[], special: Prepassed['special']): Result<Prepassed> {
  return {
    ok: true,
    value: {
      original, text, explain: false, special, asOf: new Map(), onConflictNothing: null,
      syntheticInsertColumns: false, syntheticDeleteWhere: false, notNullDefinitions: new Set(), paramCount: 0,
      toOriginal: (offset) => mapOffset(chunks, offset),
    },
  };
}

function mapOffset(chunks: readonly Chunk[], offset: number): number {
  let lo = 0;
  let hi = chunks.length - 1;
  let found: Chunk | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = chunks[mid] as Chunk;
    if (c.outStart <= offset) {
      found = c;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (found === undefined) return offset;
  return found.copied ? found.inStart + (offset - found.outStart) : found.inStart;
}

function lex(sql: string): Result<Token[]> {
  const tokens: Token[] = [];
  let i = 0;
  const n = sql.length;
  const error = (message: string, offset: number): Result<Token[]> =>
    ({ ok: false, error: sqlError('SyntaxError', message, lineColumn(sql, offset)) });
  while (i < n) {
    if (tokens.length >= TOKENS_MAX) return error('statement has too many tokens', i);
    const c = sql.charCodeAt(i);
    const ch = sql[i] as string;
    if (c === 32 || c === 9 || c === 10 || c === 13 || c === 12) { i++; continue; }
    if (ch === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
      continue;
    }
    if (ch === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) return error('unterminated /* comment', i);
      i = end + 2;
      continue;
    }
    if (ch === "'" || ((ch === 'E' || ch === 'e' || ch === 'X' || ch === 'x') && sql[i + 1] === "'")) {
      const start = i;
      i = ch === "'" ? i + 1 : i + 2;
      let text = '';
      for (;;) {
        if (i >= n) return error('unterminated quoted string', start);
        if (sql[i] === "'") {
          if (sql[i + 1] === "'") { text += "'"; i += 2; continue; }
          i++;
          break;
        }
        text += sql[i];
        i++;
      }
      tokens.push({ kind: 'string', start, end: i, text });
      continue;
    }
    if (ch === '"') {
      const start = i;
      i++;
      let text = '';
      for (;;) {
        if (i >= n) return error('unterminated quoted identifier', start);
        if (sql[i] === '"') {
          if (sql[i + 1] === '"') { text += '"'; i += 2; continue; }
          i++;
          break;
        }
        text += sql[i];
        i++;
      }
      tokens.push({ kind: 'quoted', start, end: i, text });
      continue;
    }
    if (isWordStart(c)) {
      const start = i;
      while (i < n && isWordPart(sql.charCodeAt(i))) i++;
      tokens.push({ kind: 'word', start, end: i, text: sql.slice(start, i).toUpperCase() });
      continue;
    }
    if (c >= 48 && c <= 57) {
      const start = i;
      while (i < n && /[0-9.eE]/.test(sql[i] as string)) {
        if ((sql[i] === 'e' || sql[i] === 'E') && (sql[i + 1] === '-' || sql[i + 1] === '+')) i++;
        i++;
      }
      tokens.push({ kind: 'number', start, end: i, text: sql.slice(start, i) });
      continue;
    }
    if (ch === '$' && i + 1 < n && /[0-9]/.test(sql[i + 1] as string)) {
      const start = i;
      i++;
      while (i < n && /[0-9]/.test(sql[i] as string)) i++;
      tokens.push({ kind: 'dollar', start, end: i, text: sql.slice(start, i) });
      continue;
    }
    if (ch === '?') {
      tokens.push({ kind: 'question', start: i, end: i + 1, text: '?' });
      i++;
      continue;
    }
    const two = sql.slice(i, i + 2);
    const width = two === '::' || two === '<=' || two === '>=' || two === '<>' || two === '!=' || two === '||' ? 2 : 1;
    tokens.push({ kind: 'punct', start: i, end: i + width, text: sql.slice(i, i + width) });
    i += width;
  }
  return { ok: true, value: tokens };
}

function isWordStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c >= 128;
}

function isWordPart(c: number): boolean {
  return isWordStart(c) || (c >= 48 && c <= 57) || c === 36;
}
