/**
 * A strict subset of TOML 1.0, enough for flat configuration files:
 *
 *   # comment
 *   data_dir = "/var/lib/verity"      # basic string (escapes \" \\ \b \t \n \f \r \uXXXX \UXXXXXXXX)
 *   listen = '127.0.0.1:7420'         # literal string (no escapes)
 *   replica_index = 0                 # integer (decimal, optional sign, `_` between digits)
 *   peers = ["a:7420", "b:7420"]      # one-line array of strings
 *
 * Anything else that TOML allows — tables, dotted or quoted keys, floats, booleans, dates,
 * multi-line strings, hex/octal/binary integers — is refused with its line number instead of
 * being half-understood: a configuration that parses must mean exactly what it says.
 */
export type TomlValue = string | bigint | readonly string[];

export type TomlParsed =
  | { readonly ok: true; readonly values: ReadonlyMap<string, { readonly value: TomlValue; readonly line: number }> }
  | { readonly ok: false; readonly line: number; readonly message: string };

/** Bounds of what the parser accepts. */
export const tomlLimits = Object.freeze({
  fileBytesMax: 64 * 1024,
  keysMax: 256,
  arrayItemsMax: 64,
});

const BARE_KEY = /^[A-Za-z0-9_-]+$/;
const INTEGER = /^[+-]?(0|[1-9](_?[0-9])*)$/;

class TomlFault extends Error {}

/**
 * Parses `text`; the first defect stops it with a message naming the line.
 *
 * @example parseToml('listen = "127.0.0.1:7420"\n') // { ok: true, values: Map { 'listen' => { value: '127.0.0.1:7420', line: 1 } } }
 */
export function parseToml(text: string): TomlParsed {
  if (text.length > tomlLimits.fileBytesMax) return { ok: false, line: 0, message: `file larger than ${tomlLimits.fileBytesMax} bytes` };
  const values = new Map<string, { value: TomlValue; line: number }>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    try {
      const entry = parseLine(lines[i] as string);
      if (entry === null) continue;
      const previous = values.get(entry.key);
      if (previous !== undefined) throw new TomlFault(`key "${entry.key}" is already set on line ${previous.line}`);
      if (values.size >= tomlLimits.keysMax) throw new TomlFault(`more than ${tomlLimits.keysMax} keys`);
      values.set(entry.key, { value: entry.value, line });
    } catch (error) {
      if (error instanceof TomlFault) return { ok: false, line, message: error.message };
      throw error;
    }
  }
  return { ok: true, values };
}

function parseLine(raw: string): { key: string; value: TomlValue } | null {
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(raw)) throw new TomlFault('control characters are not allowed');
  const cursor = new Cursor(raw);
  cursor.skipSpace();
  if (cursor.atEnd() || cursor.peek() === '#') return null;
  if (cursor.peek() === '[') throw new TomlFault('tables ([section]) are not supported: write flat `key = value` lines');
  const key = cursor.takeWhile((c) => c !== '=' && c !== ' ' && c !== '\t' && c !== '#').trim();
  if (key === '') throw new TomlFault('expected `key = value`');
  if (!BARE_KEY.test(key)) throw new TomlFault(`"${key}" is not a bare key (letters, digits, _ and -; dotted and quoted keys are not supported)`);
  cursor.skipSpace();
  if (cursor.next() !== '=') throw new TomlFault(`expected "=" after "${key}"`);
  cursor.skipSpace();
  const value = parseValue(cursor);
  cursor.skipSpace();
  if (!cursor.atEnd() && cursor.peek() !== '#') throw new TomlFault(`unexpected "${cursor.rest()}" after the value of "${key}"`);
  return { key, value };
}

function parseValue(cursor: Cursor): TomlValue {
  const c = cursor.peek();
  if (c === '"' || c === "'") return parseString(cursor);
  if (c === '[') return parseArray(cursor);
  if (c === undefined) throw new TomlFault('missing value after "="');
  const token = cursor.takeWhile((ch) => ch !== ' ' && ch !== '\t' && ch !== '#' && ch !== ',' && ch !== ']');
  if (INTEGER.test(token)) return BigInt(token.replaceAll('_', ''));
  if (token === 'true' || token === 'false') throw new TomlFault('booleans are not supported here');
  throw new TomlFault(`"${token}" is not a string or a decimal integer (strings need quotes)`);
}

function parseArray(cursor: Cursor): readonly string[] {
  cursor.next();
  const items: string[] = [];
  for (;;) {
    cursor.skipSpace();
    if (cursor.peek() === ']') { cursor.next(); return items; }
    if (cursor.atEnd()) throw new TomlFault('unterminated array (arrays must fit on one line)');
    const c = cursor.peek();
    if (c !== '"' && c !== "'") throw new TomlFault('arrays may hold only strings');
    if (items.length >= tomlLimits.arrayItemsMax) throw new TomlFault(`more than ${tomlLimits.arrayItemsMax} array items`);
    items.push(parseString(cursor));
    cursor.skipSpace();
    const separator = cursor.next();
    if (separator === ']') return items;
    if (separator === undefined) throw new TomlFault('unterminated array (arrays must fit on one line)');
    if (separator !== ',') throw new TomlFault('expected "," or "]" in the array');
  }
}

function parseString(cursor: Cursor): string {
  const quote = cursor.next();
  if (cursor.peek() === quote && cursor.peekAt(1) === quote) throw new TomlFault('multi-line strings are not supported');
  let out = '';
  for (;;) {
    const c = cursor.next();
    if (c === undefined) throw new TomlFault('unterminated string');
    if (c === quote) return out;
    if (c === '\\' && quote === '"') out += parseEscape(cursor);
    else out += c;
  }
}

const ESCAPES: Readonly<Record<string, string>> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', '"': '"', '\\': '\\' };

function parseEscape(cursor: Cursor): string {
  const c = cursor.next();
  if (c === undefined) throw new TomlFault('unterminated escape');
  const simple = ESCAPES[c];
  if (simple !== undefined) return simple;
  if (c === 'u' || c === 'U') {
    const digits = c === 'u' ? 4 : 8;
    let hex = '';
    for (let i = 0; i < digits; i++) hex += cursor.next() ?? '';
    if (!/^[0-9A-Fa-f]+$/.test(hex) || hex.length !== digits) throw new TomlFault(`\\${c} needs ${digits} hex digits`);
    const code = Number.parseInt(hex, 16);
    if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) throw new TomlFault(`\\${c}${hex} is not a Unicode scalar value`);
    return String.fromCodePoint(code);
  }
  throw new TomlFault(`unknown escape "\\${c}"`);
}

class Cursor {
  readonly #text: string;
  #at = 0;
  constructor(text: string) { this.#text = text; }
  atEnd(): boolean { return this.#at >= this.#text.length; }
  peek(): string | undefined { return this.#text[this.#at]; }
  peekAt(offset: number): string | undefined { return this.#text[this.#at + offset]; }
  next(): string | undefined { const c = this.#text[this.#at]; if (c !== undefined) this.#at++; return c; }
  rest(): string { return this.#text.slice(this.#at); }
  skipSpace(): void { while (this.peek() === ' ' || this.peek() === '\t') this.#at++; }
  takeWhile(predicate: (c: string) => boolean): string {
    const start = this.#at;
    while (!this.atEnd() && predicate(this.#text[this.#at] as string)) this.#at++;
    return this.#text.slice(start, this.#at);
  }
}
