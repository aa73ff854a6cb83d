import fc from 'fast-check';
import type { Param } from '../src/codec/value.js';
import type { Command } from '../src/codec/command.js';

/**
 * Random histories for property tests: two tenants, two tables each that come and go, rows
 * that collide (so some entries are rejected), schema changes, and multi-statement batches.
 */
export interface HistoryStep {
  readonly tenant: number;
  readonly command: Command;
}

const TABLES = ['a', 'b'] as const;
const table = fc.constantFrom(...TABLES);
const id = fc.integer({ min: 0, max: 5 });

const statement: fc.Arbitrary<{ sql: string; params: readonly Param[] }> = fc.oneof(
  { weight: 2, arbitrary: table.map((t) => ({ sql: `CREATE TABLE ${t} (id INTEGER PRIMARY KEY, v TEXT, n BIGINT NOT NULL)`, params: [] })) },
  { weight: 1, arbitrary: table.map((t) => ({ sql: `DROP TABLE ${t}`, params: [] })) },
  { weight: 6, arbitrary: fc.tuple(table, id, fc.string({ maxLength: 3 }), fc.integer({ min: -3, max: 3 })).map(([t, k, v, n]) => ({ sql: `INSERT INTO ${t} (id, v, n) VALUES ($1, $2, $3)`, params: [k, v, n] })) },
  { weight: 3, arbitrary: fc.tuple(table, id).map(([t, k]) => ({ sql: `UPDATE ${t} SET n = n + 1, v = v || 'u' WHERE id = ?`, params: [k] })) },
  { weight: 1, arbitrary: fc.tuple(table, id).map(([t, k]) => ({ sql: `UPDATE ${t} SET id = id + 1 WHERE id = ?`, params: [k] })) },
  { weight: 2, arbitrary: fc.tuple(table, id).map(([t, k]) => ({ sql: `DELETE FROM ${t} WHERE id >= ?`, params: [k] })) },
  { weight: 1, arbitrary: table.map((t) => ({ sql: `ALTER TABLE ${t} ADD COLUMN extra INTEGER`, params: [] })) },
  { weight: 1, arbitrary: table.map((t) => ({ sql: `CREATE INDEX ${t}_n ON ${t} (n)`, params: [] })) },
  { weight: 1, arbitrary: table.map((t) => ({ sql: `INSERT INTO ${t} (id, v, n) VALUES (1, 'x', NULL)`, params: [] })) },
);

const step: fc.Arbitrary<HistoryStep> = fc.oneof(
  { weight: 12, arbitrary: fc.tuple(fc.constantFrom(1, 2), fc.array(statement, { minLength: 1, maxLength: 3 })).map(([tenant, statements]) => ({ tenant, command: { kind: 'sql' as const, statements } })) },
  { weight: 1, arbitrary: fc.constant({ tenant: 0, command: { kind: 'noop' as const } }) },
);

/** Tenant 1 and 2 are created at positions 1 and 2; then `length` random steps. */
export function history(lengthMax: number): fc.Arbitrary<HistoryStep[]> {
  return fc.array(step, { minLength: 1, maxLength: lengthMax }).map((steps) => [
    { tenant: 1, command: { kind: 'tenant_create', id: 1, name: 'one' } as Command },
    { tenant: 2, command: { kind: 'tenant_create', id: 2, name: 'two' } as Command },
    ...steps,
  ]);
}

export const HISTORY_TABLES: readonly string[] = [...TABLES, '__events'];
