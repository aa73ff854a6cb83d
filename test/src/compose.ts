/**
 * Reading docker-compose.yml and the Dockerfile the way docker does, and turning one compose
 * service into a local process description: container host names and ports mapped to
 * 127.0.0.1 with free ports, named volumes mapped to temp dirs. Used by compose.test.ts.
 */
import { createServer } from 'node:net';
import { parse } from 'yaml';

export type Vars = Readonly<Record<string, string | undefined>>;

/**
 * Compose variable interpolation of one string: `$$` is a literal `$`; `$VAR`, `${VAR}`,
 * `${VAR:-default}` (unset or empty), `${VAR-default}` (unset), `${VAR:+alt}`, `${VAR+alt}`,
 * `${VAR:?message}` and `${VAR?message}` (error); defaults may nest further references.
 *
 * @example interpolate('${PEERS:-a:1,b:2}', {}) === 'a:1,b:2'
 */
export function interpolate(text: string, vars: Vars): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next === '{') {
      const close = matchingBrace(text, i + 1);
      out += substitute(text.slice(i + 2, close), vars);
      i = close + 1;
    } else {
      const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1))?.[0];
      if (name === undefined) throw new Error(`invalid interpolation at "${text.slice(i)}": use $$ for a literal $`);
      out += vars[name] ?? '';
      i += 1 + name.length;
    }
  }
  return out;
}

function matchingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++;
    if (text[i] === '}' && --depth === 0) return i;
  }
  throw new Error(`unterminated \${ in "${text}"`);
}

function substitute(body: string, vars: Vars): string {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+?])([\s\S]*))?$/.exec(body);
  if (match === null) throw new Error(`invalid interpolation \${${body}}`);
  const [, name, operator, rest] = match as unknown as [string, string, string | undefined, string | undefined];
  const value = vars[name];
  const set = value !== undefined;
  const nonEmpty = set && value !== '';
  switch (operator) {
    case undefined: return value ?? '';
    case ':-': return nonEmpty ? value : interpolate(rest ?? '', vars);
    case '-': return set ? value : interpolate(rest ?? '', vars);
    case ':+': return nonEmpty ? interpolate(rest ?? '', vars) : '';
    case '+': return set ? interpolate(rest ?? '', vars) : '';
    case ':?':
    case '?':
      if (operator === '?' ? set : nonEmpty) return value as string;
      throw new Error(`required variable ${name} is missing a value: ${interpolate(rest ?? '', vars)}`);
    default: throw new Error(`invalid interpolation operator in \${${body}}`);
  }
}

/** Applies `interpolate` to every string value (never to keys), as compose does. */
export function interpolateTree(node: unknown, vars: Vars): unknown {
  if (typeof node === 'string') return interpolate(node, vars);
  if (Array.isArray(node)) return node.map((item) => interpolateTree(item, vars));
  if (node !== null && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, interpolateTree(value, vars)]));
  }
  return node;
}

export interface Service {
  readonly name: string;
  readonly profiles: readonly string[];
  readonly environment: Readonly<Record<string, string>>;
  readonly command: readonly string[];
  /** Published ports: host ip, host port, container port. */
  readonly ports: readonly { hostIp: string; hostPort: number; containerPort: number }[];
  /** Named-volume mounts: volume name → container path. */
  readonly volumes: readonly { volume: string; target: string }[];
  readonly healthcheck: readonly string[] | null;
}

/** Parses docker-compose.yml text (YAML merge keys on) and interpolates it with `vars`. */
export function loadCompose(text: string, vars: Vars): { services: Service[]; volumes: string[] } {
  const doc = interpolateTree(parse(text, { merge: true }), vars) as Record<string, unknown>;
  const services = Object.entries(doc['services'] as Record<string, Record<string, unknown>>)
    .map(([name, raw]) => serviceOf(name, raw, vars));
  return { services, volumes: Object.keys((doc['volumes'] ?? {}) as object) };
}

/** Services that `docker compose [--profile p]… up` starts: no profile, or an active one. */
export function activeServices(services: readonly Service[], profiles: readonly string[]): Service[] {
  return services.filter((s) => s.profiles.length === 0 || s.profiles.some((p) => profiles.includes(p)));
}

function serviceOf(name: string, raw: Record<string, unknown>, vars: Vars): Service {
  const healthTest = (raw['healthcheck'] as { test?: unknown } | undefined)?.test;
  return {
    name,
    profiles: (raw['profiles'] ?? []) as string[],
    environment: environmentOf(raw['environment'], vars),
    command: commandOf(raw['command']),
    ports: ((raw['ports'] ?? []) as unknown[]).map((p) => portOf(name, p)),
    volumes: ((raw['volumes'] ?? []) as unknown[]).map((v) => volumeOf(name, v)),
    healthcheck: Array.isArray(healthTest) ? healthTest.map(String) : null,
  };
}

/** `environment` as a map or a `KEY=VALUE` list; a bare key takes its value from `vars`. */
function environmentOf(raw: unknown, vars: Vars): Record<string, string> {
  const env: Record<string, string> = {};
  const entries: [string, unknown][] = Array.isArray(raw)
    ? raw.map((item) => {
      const text = String(item);
      const eq = text.indexOf('=');
      return eq < 0 ? [text, null] : [text.slice(0, eq), text.slice(eq + 1)];
    })
    : Object.entries((raw ?? {}) as Record<string, unknown>);
  for (const [key, value] of entries) {
    if (value === null || value === undefined) {
      const inherited = vars[key];
      if (inherited !== undefined) env[key] = inherited;
    } else {
      env[key] = String(value);
    }
  }
  return env;
}

function commandOf(raw: unknown): string[] {
  if (raw === undefined || raw === null) return [];
  if (Array.isArray(raw)) return raw.map(String);
  // The shell-like string form: split on spaces (quotes are not used in our file).
  const text = String(raw);
  if (/["'\\]/.test(text)) throw new Error(`command "${text}": use the list form for quoted arguments`);
  return text.split(/\s+/).filter((s) => s !== '');
}

function portOf(service: string, raw: unknown): { hostIp: string; hostPort: number; containerPort: number } {
  const match = /^(?:([\d.]+):)?(\d+):(\d+)(?:\/tcp)?$/.exec(String(raw));
  if (match === null) throw new Error(`service ${service}: port "${String(raw)}" is not [IP:]HOST:CONTAINER`);
  return { hostIp: match[1] ?? '0.0.0.0', hostPort: Number(match[2]), containerPort: Number(match[3]) };
}

function volumeOf(service: string, raw: unknown): { volume: string; target: string } {
  const match = /^([A-Za-z0-9][A-Za-z0-9_.-]*):(\/[^:]*)(?::(?:ro|rw))?$/.exec(String(raw));
  if (match === null) throw new Error(`service ${service}: volume "${String(raw)}" is not NAMED_VOLUME:/PATH`);
  return { volume: match[1] as string, target: match[2] as string };
}

export interface Image {
  readonly workdir: string;
  readonly env: Readonly<Record<string, string>>;
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
}

/**
 * The runtime stage of a Dockerfile (the instructions after the last FROM): WORKDIR, ENV
 * (`KEY=VALUE …` form), ENTRYPOINT and CMD (exec form only).
 */
export function loadImage(dockerfile: string): Image {
  const lines = dockerfile.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const stageStart = lines.map((l) => /^FROM\s/i.test(l)).lastIndexOf(true);
  let workdir = '/';
  const env: Record<string, string> = {};
  let entrypoint: string[] = [];
  let cmd: string[] = [];
  for (const line of lines.slice(stageStart + 1)) {
    const [, instruction = '', args = ''] = /^(\S+)\s+([\s\S]*)$/.exec(line) ?? [];
    switch (instruction.toUpperCase()) {
      case 'WORKDIR': workdir = args; break;
      case 'ENV':
        for (const pair of args.split(/\s+/)) {
          const eq = pair.indexOf('=');
          if (eq <= 0) throw new Error(`Dockerfile: ENV "${args}" must use KEY=VALUE pairs`);
          env[pair.slice(0, eq)] = pair.slice(eq + 1);
        }
        break;
      case 'ENTRYPOINT': entrypoint = execForm('ENTRYPOINT', args); break;
      case 'CMD': cmd = execForm('CMD', args); break;
      default: break;
    }
  }
  return { workdir, env, entrypoint, cmd };
}

function execForm(instruction: string, args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed)) throw new Error(`Dockerfile: ${instruction} must use the exec (JSON array) form`);
  return parsed.map(String);
}

/** A TCP port the OS reports free on 127.0.0.1 (it may be taken again before use; rare). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Maps container addresses and paths to local ones. An address `HOST:PORT` whose host is a
 * service name, or 0.0.0.0 / 127.0.0.1 inside service `self`, becomes 127.0.0.1 with a port
 * unique to (service, container port); a path under a volume's mount point moves to that
 * volume's temp dir.
 */
export class Mapper {
  readonly #ports = new Map<string, number>();
  readonly #services: ReadonlySet<string>;
  readonly #volumeDirs: ReadonlyMap<string, string>;

  private constructor(services: ReadonlySet<string>, volumeDirs: ReadonlyMap<string, string>) {
    this.#services = services;
    this.#volumeDirs = volumeDirs;
  }

  /** Allocates a free local port for every (service, container port) the services name. */
  static async create(services: readonly Service[], image: Image, volumeDirs: ReadonlyMap<string, string>): Promise<Mapper> {
    const mapper = new Mapper(new Set(services.map((s) => s.name)), volumeDirs);
    const used = new Set<number>();
    for (const service of services) {
      const texts = [...Object.values({ ...image.env, ...service.environment }), ...service.command, ...image.cmd];
      const keys = [
        ...service.ports.map((p) => `${service.name}:${p.containerPort}`),
        ...texts.flatMap((text) => mapper.#addresses(service.name, text)),
      ];
      for (const key of keys) {
        if (mapper.#ports.has(key)) continue;
        let port = await freePort();
        for (let tries = 0; used.has(port) && tries < 100; tries++) port = await freePort();
        if (used.has(port)) throw new Error('the OS keeps handing out the same port');
        used.add(port);
        mapper.#ports.set(key, port);
      }
    }
    return mapper;
  }

  /** The local port standing for `service`'s container port. */
  port(service: string, containerPort: number): number {
    const port = this.#ports.get(`${service}:${containerPort}`);
    if (port === undefined) throw new Error(`no local port for ${service}:${containerPort}`);
    return port;
  }

  /** One environment value or argument of `service`, with addresses and volume paths mapped. */
  value(service: Service, text: string): string {
    const withAddresses = text.replace(ADDRESS, (whole, lead: string, host: string, port: string) => {
      const owner = this.#owner(service.name, host);
      return owner === null ? whole : `${lead}127.0.0.1:${this.port(owner, Number(port))}`;
    });
    return this.#path(service, withAddresses);
  }

  /** Moves `text` into the temp dir of the volume mounted at its prefix, if any. */
  #path(service: Service, text: string): string {
    for (const mount of service.volumes) {
      if (text === mount.target || text.startsWith(`${mount.target}/`)) {
        const dir = this.#volumeDirs.get(mount.volume);
        if (dir === undefined) throw new Error(`service ${service.name}: volume ${mount.volume} is not declared`);
        return dir + text.slice(mount.target.length);
      }
    }
    return text;
  }

  #addresses(self: string, text: string): string[] {
    return [...text.matchAll(ADDRESS)].flatMap((m) => {
      const owner = this.#owner(self, m[2] as string);
      return owner === null ? [] : [`${owner}:${m[3] as string}`];
    });
  }

  #owner(self: string, host: string): string | null {
    if (this.#services.has(host)) return host;
    if (host === '0.0.0.0' || host === '127.0.0.1' || host === 'localhost') return self;
    return null;
  }
}

/** HOST:PORT at the start of a value or after a comma or space. */
const ADDRESS = /(^|[,\s])([A-Za-z0-9][A-Za-z0-9.-]*):(\d{1,5})(?=$|[,\s/])/g;
