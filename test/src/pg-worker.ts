/**
 * PostgreSQL (PGlite) in a worker thread, so the oracle computes a case while VerityDB runs the
 * same case on the main thread: the differential test then takes about the time of the slower
 * engine instead of the sum of both.
 *
 * @example
 *   const pg = await PgWorker.start();
 *   const { outcomes } = await pg.runCase(renderSchema(schema, 'postgres'), [[insert], [update, del]]);
 *   await pg.close();
 */
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { PgOracle, type PgBatchOutcome, type PgOutcome } from './pg-oracle.js';
import type { RenderedStatement } from './sqlgen.js';

interface CaseRequest {
  readonly id: number;
  readonly ddl: readonly RenderedStatement[];
  /** One statement alone, or several as one atomic batch. */
  readonly steps: readonly (readonly RenderedStatement[])[];
}

export type StepOutcome = { readonly kind: 'single'; readonly outcome: PgOutcome } | { readonly kind: 'batch'; readonly outcome: PgBatchOutcome };

export interface CaseReply {
  readonly id: number;
  /** PostgreSQL rejected the schema: a generator bug. */
  readonly ddlError: string | null;
  readonly outcomes: readonly StepOutcome[];
}

export class PgWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (reply: CaseReply) => void; reject: (error: unknown) => void }>();
  #nextId = 0;

  private constructor(worker: Worker) {
    this.#worker = worker;
    worker.on('message', (reply: CaseReply) => {
      const pending = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      pending?.resolve(reply);
    });
    worker.on('error', (error) => {
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
    });
  }

  static async start(): Promise<PgWorker> {
    const pg = new PgWorker(new Worker(new URL(import.meta.url)));
    await pg.runCase([], []);
    return pg;
  }

  /** Runs the DDL in a fresh schema, then every step in order. */
  runCase(ddl: readonly RenderedStatement[], steps: readonly (readonly RenderedStatement[])[]): Promise<CaseReply> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, ddl, steps } satisfies CaseRequest);
    });
  }

  async close(): Promise<void> {
    await this.#worker.terminate();
  }
}

function serve(port: NonNullable<typeof parentPort>): void {
  const oracle = PgOracle.create();
  // Requests are served one at a time, in order: the oracle has one session.
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (request: CaseRequest) => {
    queue = queue.then(async () => port.postMessage(await runCase(await oracle, request)));
  });
}

async function runCase(oracle: PgOracle, request: CaseRequest): Promise<CaseReply> {
  let pgCase;
  try {
    pgCase = await oracle.beginCase(request.ddl);
  } catch (error) {
    return { id: request.id, ddlError: String(error), outcomes: [] };
  }
  const outcomes: StepOutcome[] = [];
  for (const step of request.steps) {
    outcomes.push(step.length === 1
      ? { kind: 'single', outcome: await pgCase.run(step[0] as RenderedStatement) }
      : { kind: 'batch', outcome: await pgCase.runBatch(step) });
  }
  return { id: request.id, ddlError: null, outcomes };
}

if (!isMainThread && parentPort !== null) serve(parentPort);
