// Passes tap's TAP stream through unchanged and ends with the one line CI reads:
// "tap: N passed, N failed". The counts are assertions, taken from tap's closing summary
// (`# { total: N, pass: N, fail: N, ... }`); skipped and todo points count as neither.
// Without a summary it falls back to top-level points (one per test file).
import { Transform } from 'node:stream';

export default class SummaryReporter extends Transform {
  #pending = '';
  #passed = 0;
  #failed = 0;

  constructor() {
    super();
  }

  _transform(chunk, _encoding, callback) {
    const text = this.#pending + chunk.toString('utf8');
    const lines = text.split('\n');
    this.#pending = lines.pop() ?? '';
    for (const line of lines) this.#count(line);
    callback(null, chunk);
  }

  _flush(callback) {
    if (this.#pending !== '') this.#count(this.#pending);
    const { passed, failed } = this.#summary ?? { passed: this.#passed, failed: this.#failed };
    callback(null, `\ntap: ${passed} passed, ${failed} failed\n`);
  }

  #summary = null;

  #count(line) {
    const summary = /^# \{ (total: \d+.*) \}$/.exec(line);
    if (summary) {
      const fields = Object.fromEntries(summary[1].split(', ').map((kv) => {
        const [key, value] = kv.split(': ');
        return [key, Number(value)];
      }));
      this.#summary = { passed: fields.pass ?? 0, failed: fields.fail ?? 0 };
      return;
    }
    if (/^ok \d+/.test(line)) this.#passed += 1;
    else if (/^not ok \d+/.test(line)) this.#failed += 1;
  }
}
