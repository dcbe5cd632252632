import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { GROUPING_PATCHED_FOR_KAFKAJS, groupMessagesPerPartition } from '../../src/sinks/kafkajs-linear-grouping.js';
import { repoRoot } from '../helpers/daemon.js';

const require = createRequire(import.meta.url);
type Group = typeof groupMessagesPerPartition;

/** kafkajs's own function, evaluated from its file (the module cache holds ours). */
function kafkajsGrouping(): Group {
  const path = require.resolve('kafkajs/src/producer/groupMessagesPerPartition.js');
  const mod = { exports: {} as unknown };
  new Function('module', 'exports', 'require', readFileSync(path, 'utf8'))(mod, mod.exports, require);
  return mod.exports as Group;
}

test('the linear grouping gives what kafkajs 2.2.4 gives: same partitions, same messages in the same order', () => {
  assert.equal((require('kafkajs/package.json') as { version: string }).version, GROUPING_PATCHED_FOR_KAFKAJS, 'kafkajs changed: re-check its groupMessagesPerPartition');
  const theirs = kafkajsGrouping();
  let seed = 7;
  const next = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
  for (const partitions of [1, 3, 12]) {
    const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({ partitionId: i }));
    const messages = Array.from({ length: 500 }, (_, i) => ({ key: `k${next(20)}`, value: `v${i}` }));
    const partitioner = ({ message }: { message: { key: string } }): number => Number(message.key.slice(1)) % partitions;
    const args = { topic: 't', partitionMetadata, messages, partitioner };
    const ours = groupMessagesPerPartition(args);
    assert.deepEqual(ours, theirs(args));
    assert.deepEqual(Object.keys(ours), Object.keys(theirs(args)));
  }
  const none = { topic: 't', partitionMetadata: [], messages: [{ key: 'a', value: 'b' }], partitioner: () => 0 };
  assert.deepEqual(groupMessagesPerPartition(none), theirs(none));
});

test("the daemon's import graph replaces kafkajs's grouping before kafkajs's producer loads", () => {
  // A fresh process, as the daemon starts: everything `sluice run` imports, then the question.
  const script = `
    await import(${JSON.stringify(join(repoRoot, 'dist/src/cli/run.js'))});
    const { createRequire } = await import('node:module');
    const g = await import(${JSON.stringify(join(repoRoot, 'dist/src/sinks/kafkajs-linear-grouping.js'))});
    const req = createRequire(${JSON.stringify(join(repoRoot, 'dist/src/sinks/kafka-client.js'))});
    const cached = req.cache[req.resolve('kafkajs/src/producer/groupMessagesPerPartition.js')];
    const producerLoaded = req.cache[req.resolve('kafkajs/src/producer/sendMessages.js')] !== undefined;
    process.stdout.write(JSON.stringify({ installed: g.linearGroupingInstalled(), ours: cached?.exports === g.groupMessagesPerPartition, producerLoaded }));
  `;
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as Record<string, boolean>;
  assert.deepEqual(out, { installed: true, ours: true, producerLoaded: true });
});
