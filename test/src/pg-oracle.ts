/**
 * PostgreSQL as the oracle of the differential test: PGlite (PostgreSQL 17 compiled to WASM)
 * in-process. One instance serves every case; each case gets a fresh schema (cheaper than a
 * fresh database), and old schemas are dropped in bulk.
 *
 * Results are read as text where JavaScript types would lose information (BIGINT, NUMERIC,
 * DOUBLE, DATE, TIMESTAMP with µs) and normalized by `results.ts`.
 *
 * @example
 *   const pg = await PgOracle.create();
 *   const c = await pg.beginCase(renderSchema(schema, 'postgres'));
 *   const outcome = await c.run(renderStatement(stmt));
 *   await pg.close();
 */
import { PGlite } from '@electric-sql/pglite';
import { normalizeValue, type NormRow, type Outcome, type ValueKind } from './results.js';
import type { RenderedStatement, SqlValue } from './sqlgen.js';

/** Schemas left behind before one bulk DROP. */
const SCHEMAS_PER_DROP = 64;

/** PostgreSQL type OIDs → how to read their values. */
const KIND_BY_OID: ReadonlyMap<number, ValueKind> = new Map<number, ValueKind>([
  [16, 'bool'], [17, 'bytes'], [20, 'int'], [21, 'int'], [23, 'int'], [25, 'text'], [1043, 'text'],
  [700, 'float'], [701, 'float'], [1700, 'numeric'], [1082, 'date'], [1114, 'timestamp'],
]);

export function kindOfOid(oid: number): ValueKind {
  return KIND_BY_OID.get(oid) ?? 'other';
}

const identity = (text: string): string => text;
/** Keep these as PostgreSQL's text: exact integers, NUMERIC digits, shortest round-trip doubles,
 * dates without a time zone, timestamps with microseconds. */
const TEXT_PARSERS = { 20: identity, 700: identity, 701: identity, 1700: identity, 1082: identity, 1114: identity };

/** A statement's outcome in PostgreSQL, with the kinds of its result columns. */
export interface PgOutcome {
  readonly outcome: Outcome;
  readonly kinds: readonly ValueKind[];
}

export class PgOracle {
  readonly #db: PGlite;
  #caseCount = 0;
  #undropped: string[] = [];

  private constructor(db: PGlite) {
    this.#db = db;
  }

  static async create(): Promise<PgOracle> {
    return new PgOracle(await PGlite.create());
  }

  /** A fresh schema with the case's DDL applied. Throws if PostgreSQL rejects the DDL. */
  async beginCase(ddl: readonly RenderedStatement[]): Promise<PgCase> {
    if (this.#undropped.length >= SCHEMAS_PER_DROP) await this.#dropSchemas();
    const schema = `dt_case_${this.#caseCount++}`;
    this.#undropped.push(schema);
    await this.#db.exec(`CREATE SCHEMA ${schema}; SET search_path TO ${schema};`);
    for (const stmt of ddl) await this.#db.query(stmt.sql, [...stmt.params]);
    return new PgCase(this.#db);
  }

  async #dropSchemas(): Promise<void> {
    const drops = this.#undropped.map((s) => `DROP SCHEMA ${s} CASCADE;`).join(' ');
    this.#undropped = [];
    await this.#db.exec(`SET search_path TO public; ${drops}`);
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}

/** An atomic batch in PostgreSQL: one transaction, committed only if every statement succeeds. */
export type PgBatchOutcome =
  | { readonly ok: true; readonly outcomes: readonly PgOutcome[] }
  | { readonly ok: false; readonly error: string };

export class PgCase {
  readonly #db: PGlite;

  constructor(db: PGlite) {
    this.#db = db;
  }

  async runBatch(stmts: readonly RenderedStatement[]): Promise<PgBatchOutcome> {
    await this.#db.exec('BEGIN');
    const outcomes: PgOutcome[] = [];
    for (const stmt of stmts) {
      const result = await this.run(stmt);
      if (!result.outcome.ok) {
        await this.#db.exec('ROLLBACK');
        return { ok: false, error: result.outcome.error };
      }
      outcomes.push(result);
    }
    await this.#db.exec('COMMIT');
    return { ok: true, outcomes };
  }

  async run(stmt: RenderedStatement): Promise<PgOutcome> {
    try {
      const result = await this.#db.query<unknown[]>(stmt.sql, stmt.params.map(toPgParam), { rowMode: 'array', parsers: TEXT_PARSERS });
      const kinds = result.fields.map((f) => kindOfOid(f.dataTypeID));
      const rows: NormRow[] = result.rows.map((row) => row.map((v, i) => normalizeValue(v, kinds[i] ?? 'other')));
      return {
        outcome: {
          ok: true,
          columns: result.fields.length === 0 ? null : result.fields.map((f) => f.name),
          rows,
          rowsAffected: stmt.mode === 'execute' ? (result.affectedRows ?? 0) : null,
        },
        kinds,
      };
    } catch (error) {
      const e = error as { message?: unknown; code?: unknown };
      return { outcome: { ok: false, error: `${String(e.code ?? '')} ${String(e.message ?? error)}`.trim() }, kinds: [] };
    }
  }
}

/** PGlite sends a JavaScript bigint through `String`; every other parameter passes unchanged. */
function toPgParam(value: SqlValue): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
