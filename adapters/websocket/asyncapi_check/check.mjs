// Parses an AsyncAPI document with @asyncapi/parser (the parser AsyncAPI's
// own tools use, so what passes here loads in them) and exits 1 on any
// diagnostic of error severity, printing every diagnostic so that warnings
// are seen too. Usage: node check.mjs path/to/asyncapi.yaml
import { Parser, fromFile } from '@asyncapi/parser';

const severities = ['error', 'warning', 'info', 'hint'];

const path = process.argv[2];
if (!path) {
  console.error('usage: node check.mjs path/to/asyncapi.yaml');
  process.exit(2);
}
const { document, diagnostics } = await fromFile(new Parser(), path).parse();
let errors = 0;
for (const d of diagnostics) {
  const severity = severities[d.severity] ?? String(d.severity);
  if (d.severity === 0) {
    errors++;
  }
  const line = d.range ? d.range.start.line + 1 : '?';
  console.log(`${path}:${line}: ${severity}: ${d.code}: ${d.message} (at ${d.path.join('.')})`);
}
if (errors > 0 || document === undefined) {
  console.error(`${path}: ${errors} error(s); the document does not parse as AsyncAPI`);
  process.exit(1);
}
console.log(`${path}: AsyncAPI ${document.version()}, ${document.allMessages().length} messages, ${document.operations().length} operations`);
