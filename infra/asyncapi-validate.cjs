// Validates an AsyncAPI document with the official parser (@asyncapi/parser): prints every
// diagnostic and exits 1 on any error.
//   node infra/asyncapi-validate.cjs PARSER_DIR DOCUMENT.json
'use strict';
const fs = require('node:fs');

async function main() {
  const [dir, file] = process.argv.slice(2);
  if (!dir || !file) {
    console.error('usage: asyncapi-validate.cjs PARSER_DIR DOCUMENT.json');
    process.exit(2);
  }
  const { Parser } = require(require.resolve('@asyncapi/parser', { paths: [dir] }));
  const { document, diagnostics } = await new Parser().parse(fs.readFileSync(file, 'utf8'));
  const names = ['error', 'warning', 'information', 'hint'];
  for (const d of diagnostics) {
    console.log(`asyncapi ${names[d.severity] || d.severity}: ${d.code} at /${d.path.join('/')}: ${d.message}`);
  }
  const errors = diagnostics.filter((d) => d.severity === 0).length;
  if (errors > 0 || !document) {
    console.error(`asyncapi: INVALID, ${errors} error(s)`);
    process.exit(1);
  }
  console.log(
    `asyncapi: valid AsyncAPI ${document.version()} document: ` +
      `${document.channels().length} channel(s), ${document.operations().length} operation(s), ` +
      `${document.messages().length} message(s), ${document.components().schemas().length} schema(s); ` +
      `0 errors, ${diagnostics.length} other diagnostic(s)`,
  );
}

main().catch((e) => {
  console.error(`asyncapi: validator failed: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
