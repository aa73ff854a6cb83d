import type { DatabaseStatus } from 'veritydb';

/**
 * Rendering of query results for people (an aligned text table) and for programs (JSON lines).
 * Pure functions: no I/O, so they are unit-tested directly.
 */

export type CellValue = unknown;
export type ResultRow = Readonly<Record<string, CellValue>>;

/** A JSON-safe copy of a value: bigint as a number when safe else a string, bytes as `\x…` hex,
 * dates as ISO text. */
export function toJsonValue(value: CellValue): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value) : value.toString();
  }
  if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString('hex')}`;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, toJsonValue(v)]));
  }
  return value;
}

/** One cell as text, the way psql would show it. */
export function cellText(value: CellValue): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && !(value instanceof Uint8Array) && !(value instanceof Date)) {
    return JSON.stringify(toJsonValue(value));
  }
  const json = toJsonValue(value);
  return typeof json === 'string' ? json : String(json);
}

/** An aligned text table with a header, a rule and a row count line. */
export function renderTable(rows: readonly ResultRow[]): string {
  if (rows.length === 0) return '(0 rows)';
  const columns = columnsOf(rows);
  const cells = rows.map((row) => columns.map((c) => cellText(row[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (values: readonly string[]): string =>
    values.map((v, i) => v.padEnd(widths[i] ?? 0)).join(' | ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('-+-');
  const count = rows.length === 1 ? '(1 row)' : `(${rows.length} rows)`;
  return [line(columns), rule, ...cells.map(line), count].join('\n');
}

function columnsOf(rows: readonly ResultRow[]): string[] {
  const seen = new Set<string>();
  for (const row of rows) for (const key of Object.keys(row)) seen.add(key);
  return [...seen];
}

/** `status --json`: the cluster and, per replica, its role, status (state), view, commit and
 * applied positions, and lag (commit of the most advanced replica − applied). */
export function statusJson(status: DatabaseStatus): unknown {
  const commit = Math.max(0, ...status.replicas.map((r) => r.commit));
  return {
    mode: status.mode,
    clusterId: status.clusterId,
    view: status.view,
    primary: status.primary,
    connectedTo: status.connectedTo,
    replicas: status.replicas.map((r) => ({
      index: r.index, address: r.address, role: r.role, status: r.state, view: r.view, commit: r.commit, applied: r.applied,
      lag: Math.max(0, commit - r.applied),
    })),
  };
}

/** `status` for people: a header line and one table row per replica. */
export function renderStatus(status: DatabaseStatus): string {
  const head = status.mode === 'embedded'
    ? 'embedded (single node, this process)'
    : `cluster ${status.clusterId ?? '?'}  view ${status.view}  primary ${status.primary ?? 'unknown'}  (connected to ${status.connectedTo ?? '?'})`;
  const rows = (statusJson(status) as { replicas: ResultRow[] }).replicas;
  return `${head}\n${renderTable(rows)}`;
}

/** A one-line progress bar redrawn in place (`\r`) on a terminal; redrawn only when it changes. */
export class ProgressBar {
  readonly #write: (text: string) => void;
  readonly #width: number;
  #drawn = '';

  constructor(write: (text: string) => void, width = 30) {
    this.#write = write;
    this.#width = width;
  }

  update(done: number, total: number): void {
    const fraction = total <= 0 ? 1 : Math.min(1, Math.max(0, done / total));
    const filled = Math.round(fraction * this.#width);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(this.#width - filled)}] ${Math.floor(fraction * 100)}% ${done}/${total}`;
    if (line === this.#drawn) return;
    this.#drawn = line;
    this.#write(`\r${line}`);
  }

  /** Ends the line (if anything was drawn). */
  finish(): void {
    if (this.#drawn !== '') this.#write('\n');
  }
}
