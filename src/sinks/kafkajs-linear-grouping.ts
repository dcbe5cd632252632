import { createRequire } from 'node:module';

/**
 * kafkajs 2.2.4 groups a send's messages by partition with
 * `reduce((r, m) => Object.assign(r, { [p]: [...r[p], m] }))`: every message copies its
 * partition's array so far. For the drain's 2,000-record batches to one partition that is
 * 2 million element copies and ~16 MB of short-lived arrays per batch, ~8 KB of garbage per
 * record, which the unit's small heap turns into garbage-collection CPU. This module puts a
 * linear grouping with the same result (same keys, same order, same arrays' contents) in its
 * place.
 *
 * How: kafkajs's producer takes the function once, when `sendMessages.js` is first loaded, from
 * Node's CommonJS module cache. Importing this module before kafkajs replaces the cached module's
 * export, so the producer kafkajs then builds uses it. The only state is that module cache entry,
 * process-wide by Node's design; installing twice is harmless. If kafkajs was loaded first, or is
 * not 2.2.4, nothing is patched and `linearGroupingInstalled()` says so (a unit test holds the
 * daemon's import order to it).
 */

const require = createRequire(import.meta.url);

export const GROUPING_PATCHED_FOR_KAFKAJS = '2.2.4';

interface GroupArgs<M> {
  topic: string;
  partitionMetadata: unknown[];
  messages: M[];
  partitioner: (args: { topic: string; partitionMetadata: unknown[]; message: M }) => number;
}

/** kafkajs's groupMessagesPerPartition, in one pass: partition → its messages in send order. */
export function groupMessagesPerPartition<M>({ topic, partitionMetadata, messages, partitioner }: GroupArgs<M>): Record<number, M[]> {
  const result: Record<number, M[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    const list = result[partition];
    if (list) list.push(message);
    else result[partition] = [message];
  }
  return result;
}

function install(): boolean {
  const version = (require('kafkajs/package.json') as { version: string }).version;
  if (version !== GROUPING_PATCHED_FOR_KAFKAJS) return false;
  const groupPath = require.resolve('kafkajs/src/producer/groupMessagesPerPartition.js');
  const sendPath = require.resolve('kafkajs/src/producer/sendMessages.js');
  const cache = require.cache;
  if (cache[groupPath]?.exports === groupMessagesPerPartition) return true;
  if (cache[sendPath]) return false; // kafkajs already took its own function
  require(groupPath);
  const entry = cache[groupPath];
  if (!entry) return false;
  entry.exports = groupMessagesPerPartition;
  return true;
}

const installed = install();

/** Whether kafkajs's producers use the linear grouping (false if kafkajs loaded first). */
export function linearGroupingInstalled(): boolean {
  return installed;
}
