import { prepare } from '@veritydb/query';
import type { VerifyResult } from '@veritydb/storage';
import type { TenantId } from '@veritydb/types';
import type { BackupPart } from './backup.js';
import type { CallOptions } from './options.js';
import type {
  BatchResult, BatchStatement, DatabaseStatus, EventFilter, QueryOptions, ReadResult, TenantInfo, VerifyOptions,
  VerifyScope, VerityEvent, WriteResult,
} from './verity.js';

/**
 * What `Verity` and `Tenant` run on: the embedded engine in this process (`Verity.open`) or a
 * server over the wire protocol (`Verity.connect`). Both implement every method with the same
 * results, value conversions and error classes; an operation a mode cannot offer fails with
 * `NotSupported`. Arguments reach a backend already checked by `Verity`/`Tenant` where the check
 * is the same for both modes.
 */
export interface Backend {
  /** Embedded: the last applied position. Remote: the highest position this handle has seen. */
  readonly position: number;
  createTenant(id: TenantId, name: string, options: CallOptions | undefined): Promise<{ position: number }>;
  dropTenant(id: TenantId, options: CallOptions | undefined): Promise<{ position: number }>;
  listTenants(options: CallOptions | undefined): Promise<TenantInfo[]>;
  status(options: CallOptions | undefined): Promise<DatabaseStatus>;
  createToken(scopes: readonly string[], expiresAtSeconds: number, options: CallOptions | undefined): Promise<string>;
  execute(tenant: TenantId, sql: string, params: readonly unknown[] | undefined, options: CallOptions | undefined): Promise<WriteResult>;
  query(tenant: TenantId, sql: string, params: readonly unknown[] | undefined, options: QueryOptions | undefined): Promise<ReadResult>;
  batch(tenant: TenantId, statements: readonly BatchStatement[], options: CallOptions | undefined): Promise<BatchResult>;
  events(tenant: TenantId, filter: EventFilter, options: CallOptions | undefined): AsyncGenerator<VerityEvent>;
  verify(scope: VerifyScope, options: VerifyOptions | undefined): Promise<VerifyResult>;
  exportTenant(tenant: TenantId, options: CallOptions | undefined): AsyncGenerator<Uint8Array>;
  backup(options: CallOptions | undefined): AsyncGenerator<BackupPart>;
  checkpoint(options: CallOptions | undefined): Promise<{ position: number }>;
  stateHash(): string;
  close(options: CallOptions | undefined): Promise<void>;
}

/** Whether `sql` is one read-only statement (answered without logging, in both modes). */
export function isReadOnly(sql: string): boolean {
  const prepared = prepare(sql);
  return prepared.ok && prepared.value.readOnly;
}
