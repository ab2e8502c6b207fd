// Reads Mermaid text on stdin and parses it with mermaid's own parser (the one
// github.com renders with), exiting 1 with the parser's message when it fails.
// mermaid sanitizes labels with DOMPurify, which needs a DOM: jsdom provides
// one, installed before mermaid is imported.
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;

const { default: mermaid } = await import('mermaid');
const text = readFileSync(0, 'utf8');
try {
  const res = await mermaid.parse(text);
  process.stdout.write(`ok ${res.diagramType}\n`);
} catch (err) {
  process.stderr.write(`${err.message ?? err}\n`);
  process.exit(1);
}
