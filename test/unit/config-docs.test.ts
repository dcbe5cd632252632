import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { configDocsMarkdown, DOCS_BEGIN, DOCS_END, spliceConfigDocs } from '../../src/config/config-docs.js';
import { repoRoot } from '../helpers/daemon.js';

test("README.md's config table is the one the schema generates (run `npm run gen-config-docs` after changing the schema)", () => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  assert.equal(readme, spliceConfigDocs(readme, configDocsMarkdown()));
});

test('the generated table has a row per key with the bounds the schema holds', () => {
  const table = configDocsMarkdown();
  assert.match(table, /^\| `mqtt\[\]\.keepalive_s` \| integer \| `30` \| 0–65535 \|$/m);
  assert.match(table, /^\| `gateway\.shutdown_timeout_ms` \| integer \| `10000` \| 100–2147483647 \|$/m);
  assert.match(table, /^\| `mqtt\[\]\.subscribe\[\]\.topic` \| string \| {2}\| MQTT topic filter/m);
  assert.match(table, /^\| `sink\[\]\.brokers` \| array of string \| {2}\| at least 1; each: "host:port" or "\[IPv6\]:port"/m);
  assert.match(table, /^\| `sink\[\]\.gap_topic` \| string \| `"sluice-gaps"` \| Kafka topic name/m);
  // A schema change shows: the splice of a changed table differs.
  const readme = `a\n${DOCS_BEGIN}\nold\n${DOCS_END}\nb\n`;
  assert.equal(spliceConfigDocs(readme, table), `a\n${DOCS_BEGIN}\n${table}${DOCS_END}\nb\n`);
  assert.throws(() => spliceConfigDocs('no markers', table), /markers/);
});
