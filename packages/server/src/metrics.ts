/**
 * Counters and gauges rendered in the Prometheus text format (version 0.0.4). Label sets are
 * small and bounded (request kinds, error codes), so each metric keeps a map per label value.
 *
 * @example
 *   const metrics = new Metrics();
 *   metrics.requests.inc('execute');
 *   response.end(metrics.render(engine.status()));
 */
export class Counter {
  readonly name: string;
  readonly help: string;
  readonly label: string | null;
  readonly #values = new Map<string, number>();

  constructor(name: string, help: string, label: string | null = null) {
    this.name = name;
    this.help = help;
    this.label = label;
  }

  inc(labelValue = '', by = 1): void {
    this.#values.set(labelValue, (this.#values.get(labelValue) ?? 0) + by);
  }

  get(labelValue = ''): number {
    return this.#values.get(labelValue) ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.label === null) lines.push(`${this.name} ${this.get()}`);
    for (const [value, count] of [...this.#values].sort()) {
      if (this.label !== null) lines.push(`${this.name}{${this.label}="${escapeLabel(value)}"} ${count}`);
    }
    return lines.join('\n');
  }
}

export interface Gauges {
  readonly connections: number;
  readonly logHead: number;
  readonly durable: number;
  readonly applied: number;
  readonly tenants: number;
  readonly writesInFlight: number;
  readonly requestsInFlight: number;
}

export class Metrics {
  readonly requests = new Counter('vdb_requests_total', 'Requests received, by kind.', 'kind');
  readonly errors = new Counter('vdb_request_errors_total', 'Error responses sent, by code.', 'code');
  readonly connectionsAccepted = new Counter('vdb_connections_accepted_total', 'TCP connections accepted.');
  readonly connectionsRefused = new Counter('vdb_connections_refused_total', 'Connections closed for a handshake, framing or protocol failure, or a limit.', 'reason');
  readonly frames = new Counter('vdb_frames_received_total', 'Frames received and decoded.');
  readonly httpRequests = new Counter('vdb_http_requests_total', 'HTTP sidecar requests, by path.', 'path');

  render(gauges: Gauges): string {
    const gauge = (name: string, help: string, value: number): string => `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name} ${value}`;
    return [
      this.requests.render(), this.errors.render(), this.connectionsAccepted.render(), this.connectionsRefused.render(),
      this.frames.render(), this.httpRequests.render(),
      gauge('vdb_connections', 'Open client connections.', gauges.connections),
      gauge('vdb_requests_in_flight', 'Requests received and not yet answered.', gauges.requestsInFlight),
      gauge('vdb_log_head_position', 'Last position appended to the log.', gauges.logHead),
      gauge('vdb_durable_position', 'Last position covered by an fdatasync.', gauges.durable),
      gauge('vdb_applied_position', 'Last position applied to the state.', gauges.applied),
      gauge('vdb_commit_position', 'Last committed position (single node: the durable one).', gauges.durable),
      gauge('vdb_writes_in_flight', 'Writes appended and not yet answered.', gauges.writesInFlight),
      gauge('vdb_tenants', 'Live tenants.', gauges.tenants),
    ].join('\n') + '\n';
  }
}

function escapeLabel(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
}
