import { applyCatalogChange, emptyCatalog, execute, prepare, type Catalog, type ExecuteContext, type ExecuteResult, type QueryResult, type SqlError } from '../src/index.js';
import { MemoryStore } from './memory-store.js';

/** One tenant's database for tests: a catalog plus a MemoryStore, applying catalog changes
 * the way the kernel does (after each successful statement). */
export class Db {
  catalog: Catalog = emptyCatalog();
  readonly store = new MemoryStore();
  forceFullScan = false;
  extra: Partial<ExecuteContext> = {};

  run(sql: string, params: readonly unknown[] = []): ExecuteResult {
    const p = prepare(sql);
    if (!p.ok) return { ok: false, error: p.error };
    const r = execute(p.value, params, { catalog: this.catalog, writer: this.store, forceFullScan: this.forceFullScan, ...this.extra });
    if (r.ok && r.result.catalogChange !== undefined) this.catalog = applyCatalogChange(this.catalog, r.result.catalogChange);
    return r;
  }

  ok(sql: string, params: readonly unknown[] = []): QueryResult {
    const r = this.run(sql, params);
    if (!r.ok) throw new Error(`expected success for ${sql}: ${r.error.code} ${r.error.message}`);
    return r.result;
  }

  rows(sql: string, params: readonly unknown[] = []): unknown[][] {
    return this.ok(sql, params).rows.map((r) => [...r]);
  }

  err(sql: string, params: readonly unknown[] = []): SqlError {
    const r = this.run(sql, params);
    if (r.ok) throw new Error(`expected an error for ${sql}`);
    return r.error;
  }
}
