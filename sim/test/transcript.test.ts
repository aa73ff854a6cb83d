import t from 'tap';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Harness } from '../src/harness.js';

/**
 * Scripted transcript tests (etcd-raft style). Each file in test/transcripts starts with a
 * `# options: {...}` line, then commands prefixed `> ` each followed by the expected output
 * (`# ` lines are comments, kept).
 * `REWRITE=1` regenerates the expected output (review the diff before committing it).
 */
const directory = fileURLToPath(new URL('../../test/transcripts/', import.meta.url));

interface TranscriptOptions {
  replicas: number; sessionsMax?: number; bugs?: Record<string, boolean>; checkpointIntervalOps?: number; stateTransferLagOps?: number;
}

function parse(source: string): { options: TranscriptOptions; script: string } {
  const lines = source.split('\n');
  const header = lines[0] ?? '';
  const match = /^# options: (.*)$/.exec(header);
  if (match === null) throw new Error('transcript must start with "# options: {...}"');
  const script = lines.slice(1).filter((line) => line.startsWith('> ') || line.startsWith('# '))
    .map((line) => (line.startsWith('> ') ? line.slice(2) : line)).join('\n');
  return { options: JSON.parse(match[1] as string), script };
}

for (const file of readdirSync(directory).filter((name) => name.endsWith('.txt')).sort()) {
  t.test(file, async (t) => {
    const path = directory + file;
    const source = readFileSync(path, 'utf8');
    const { options, script } = parse(source);
    const harness = new Harness(options.replicas, {
      ...(options.sessionsMax === undefined ? {} : { sessionsMax: options.sessionsMax }),
      ...(options.bugs === undefined ? {} : { bugs: options.bugs }),
      ...(options.checkpointIntervalOps === undefined ? {} : { checkpointIntervalOps: options.checkpointIntervalOps }),
      ...(options.stateTransferLagOps === undefined ? {} : { stateTransferLagOps: options.stateTransferLagOps }),
    });
    const actual = `${source.split('\n')[0]}\n${harness.run(script)}`;
    if (process.env['REWRITE'] === '1') writeFileSync(path, actual);
    t.equal(actual, source, `${file} matches its transcript`);
  });
}
