// Reads Mermaid documents on stdin, separated by NUL bytes, and parses each
// with mermaid's own parser (the one github.com renders with). It prints one
// JSON line per document, {"ok":true} or {"ok":false,"error":"..."}, and exits
// 1 when any failed. One process checks many documents because loading
// mermaid takes about two seconds.
//
// mermaid sanitizes labels with DOMPurify, which needs a DOM: jsdom provides
// one, installed as globals before mermaid is imported.
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;

const { default: mermaid } = await import('mermaid');
const docs = readFileSync(0, 'utf8').split('\0');
let failed = false;
for (const text of docs) {
  try {
    const res = await mermaid.parse(text);
    process.stdout.write(JSON.stringify({ ok: true, type: res.diagramType }) + '\n');
  } catch (err) {
    failed = true;
    process.stdout.write(JSON.stringify({ ok: false, error: String(err.message ?? err) }) + '\n');
  }
}
process.exit(failed ? 1 : 0);
