import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configDocsMarkdown, spliceConfigDocs } from '../src/config/config-docs.js';

// Writes README.md's config table from the schema: `npm run gen-config-docs`.
const readme = join(import.meta.dirname, '../../README.md');
writeFileSync(readme, spliceConfigDocs(readFileSync(readme, 'utf8'), configDocsMarkdown()));
process.stdout.write(`${readme}: config table written\n`);
