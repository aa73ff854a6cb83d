import { assert, limits } from '@veritydb/types';
import type { AsOf, Statement } from './ast.js';
import type { Result } from './errors.js';
import { parseStatement } from './parse.js';

/** A parsed statement, ready to execute any number of times with different parameters. */
export interface Prepared {
  readonly sql: string;
  readonly statement: Statement;
  /** Parameters the statement needs ($1 … $paramCount). */
  readonly paramCount: number;
  /** True when the statement changes nothing (SELECT, EXPLAIN, SHOW, DESCRIBE). */
  readonly readOnly: boolean;
  /** The snapshot the statement's table reference asks for, if any (AS OF). */
  readonly asOf: AsOf | null;
}

/**
 * Parses and caches statements by their exact text. The cache is bounded
 * (`limits.statementCacheEntriesMax`) and evicts the least recently used entry, which is
 * deterministic for a given sequence of calls.
 *
 * @example
 *   const cache = new StatementCache();
 *   const p = cache.prepare('SELECT * FROM p WHERE id = ?');
 *   if (p.ok) execute(p.value, [1], { catalog, reader });
 */
export class StatementCache {
  /** Successes and parse failures alike: a client repeating a bad statement costs one parse. */
  readonly #entries = new Map<string, Result<Prepared>>();
  readonly #capacity: number;

  constructor(capacity: number = limits.statementCacheEntriesMax) {
    assert(Number.isSafeInteger(capacity) && capacity >= 1, 'cache capacity is a positive integer');
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  prepare(sql: string): Result<Prepared> {
    const hit = this.#entries.get(sql);
    if (hit !== undefined) {
      this.#entries.delete(sql);
      this.#entries.set(sql, hit);
      return hit;
    }
    const prepared = prepareUncached(sql);
    if (this.#entries.size >= this.#capacity) {
      const oldest = this.#entries.keys().next();
      assert(oldest.done !== true, 'a full cache has an oldest entry');
      this.#entries.delete(oldest.value);
    }
    this.#entries.set(sql, prepared);
    assert(this.#entries.size <= this.#capacity, 'cache within its bound');
    return prepared;
  }
}

/** Parses one statement without caching. */
export function prepareUncached(sql: string): Result<Prepared> {
  const parsed = parseStatement(sql);
  if (!parsed.ok) return parsed;
  const statement = parsed.value.statement;
  const readOnly = statement.kind === 'select' || statement.kind === 'explain' || statement.kind === 'showTables' || statement.kind === 'showProjections' || statement.kind === 'describe';
  const select = statement.kind === 'select' ? statement : statement.kind === 'explain' ? statement.select : null;
  return { ok: true, value: { sql, statement, paramCount: parsed.value.paramCount, readOnly, asOf: select?.from?.asOf ?? null } };
}

const shared = new StatementCache();

/** Parses `sql` through a module-wide statement cache. Pure apart from that cache, whose
 * contents never change a result. */
export function prepare(sql: string): Result<Prepared> {
  return shared.prepare(sql);
}
