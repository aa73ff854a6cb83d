import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  decodeClientMessage, decodeRowBlock, decodeServerMessage, decodeValueList, encodeClientMessage, encodeFrame,
  encodeRowBlock, encodeServerMessage, encodeValueList, FrameDecoder,
} from '../src/index.js';
import { canon } from './arbitraries.js';
import { CLIENT_VECTORS, ROW_BLOCK_VECTOR, SERVER_VECTORS, VALUE_LIST_VECTOR } from './protocol-vectors.js';

// Compiled to dist/test/, so the package root is two levels up.
const protocolPath = new URL('../../../../docs/PROTOCOL.md', import.meta.url);
const document = readFileSync(protocolPath, 'utf8');

/** Every ```hex vector=NAME block: comments (#…) and whitespace removed, hex decoded. */
function parseVectors(markdown: string): Map<string, Uint8Array> {
  const vectors = new Map<string, Uint8Array>();
  for (const match of markdown.matchAll(/^```hex vector=([a-z0-9-]+)\n([\s\S]*?)^```$/gm)) {
    const name = match[1] as string;
    const hex = (match[2] as string).split('\n').map((line) => line.replace(/#.*$/, '')).join('').replace(/\s+/g, '');
    if (!/^([0-9a-f]{2})*$/.test(hex)) throw new Error(`vector ${name}: not hex`);
    if (vectors.has(name)) throw new Error(`vector ${name} appears twice`);
    vectors.set(name, Buffer.from(hex, 'hex'));
  }
  return vectors;
}

const vectors = parseVectors(document);
const hexOf = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

function vector(name: string): Uint8Array {
  const bytes = vectors.get(name);
  if (bytes === undefined) throw new Error(`PROTOCOL.md has no vector ${name}`);
  return bytes;
}

/** The one payload a frame vector carries (header checked by the decoder: magic, length, CRC). */
function payloadOf(frame: Uint8Array): Uint8Array {
  const { frames, error } = new FrameDecoder().push(frame);
  if (error !== null || frames.length !== 1) throw new Error(`not exactly one valid frame: ${error?.message ?? frames.length}`);
  return (frames[0] as { payload: Uint8Array }).payload;
}

t.test('PROTOCOL.md has exactly the vectors this test knows', async (t) => {
  const expected = ['value-list', 'row-block', ...Object.keys(CLIENT_VECTORS), ...Object.keys(SERVER_VECTORS)].sort();
  t.same([...vectors.keys()].sort(), expected);
});

t.test('value list and row block vectors', async (t) => {
  t.equal(hexOf(encodeValueList(VALUE_LIST_VECTOR)), hexOf(vector('value-list')), 'value-list encodes to the documented bytes');
  t.equal(canon(decodeValueList(vector('value-list'))), canon(VALUE_LIST_VECTOR), 'value-list decodes back');
  const types = ROW_BLOCK_VECTOR.columns.map((c) => c.type);
  t.equal(hexOf(encodeRowBlock(types.length, ROW_BLOCK_VECTOR.rows)), hexOf(vector('row-block')), 'row-block encodes');
  t.equal(canon(decodeRowBlock(vector('row-block'), types)), canon(ROW_BLOCK_VECTOR.rows), 'row-block decodes back');
});

t.test('client frame vectors', async (t) => {
  for (const [name, message] of Object.entries(CLIENT_VECTORS)) {
    t.equal(hexOf(encodeFrame(encodeClientMessage(message))), hexOf(vector(name)), `${name} encodes to the documented bytes`);
    const decoded = decodeClientMessage(payloadOf(vector(name)));
    t.equal(decoded.ok && canon(decoded.value), canon(message), `${name} decodes back`);
  }
});

t.test('server frame vectors', async (t) => {
  for (const [name, message] of Object.entries(SERVER_VECTORS)) {
    t.equal(hexOf(encodeFrame(encodeServerMessage(message))), hexOf(vector(name)), `${name} encodes to the documented bytes`);
    const decoded = decodeServerMessage(payloadOf(vector(name)));
    t.equal(decoded.ok && canon(decoded.value), canon(message), `${name} decodes back`);
  }
});

t.test('the vector parser notices a changed byte', async (t) => {
  const changed = document.replace('0301                     # int64 -1', '0303                     # int64 -1');
  t.not(changed, document, 'the edit applied');
  t.not(hexOf(parseVectors(changed).get('value-list') ?? new Uint8Array()), hexOf(encodeValueList(VALUE_LIST_VECTOR)));
});
