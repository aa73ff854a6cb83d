import { Readable } from 'node:stream';
import { runCli } from '../src/index.js';

export interface Run { code: number; out: string; err: string }

/** Runs `vdb-admin` in this process and collects what it prints. */
export async function run(argv: string[], options: { env?: Record<string, string>; untilStopped?: () => Promise<string> } = {}): Promise<Run> {
  let out = '';
  let err = '';
  const code = await runCli(argv, {
    stdout: (text) => { out += text; },
    stderr: (text) => { err += text; },
    stdin: Readable.from(['']),
    interactive: false,
    env: options.env ?? {},
    ...(options.untilStopped === undefined ? {} : { untilStopped: options.untilStopped }),
  });
  return { code, out, err };
}
