// tsc -b never deletes outputs of removed sources; a stale compiled test would still run.
import { rmSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const roots = ['sim', 'test', 'bench', ...readdirSync('packages').map((p) => join('packages', p))];
for (const root of roots) {
  for (const out of ['dist', 'tsconfig.tsbuildinfo']) {
    const path = join(root, out);
    if (existsSync(path)) rmSync(path, { recursive: true, force: true });
  }
}
