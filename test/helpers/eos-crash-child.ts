/**
 * Child process for the exactly-once crash-window test: runs the production KafkaSink (real
 * transactional client, real SqliteJournal) with its client wrapped through the sink's injected
 * factory, and kills itself with SIGKILL right after the first transaction that commits a cursor
 * at or past `killAtSeq`: Kafka has committed the records and the cursor, the journal's cursor
 * update has not happened. Exactly the moment a kill -9 must not turn into duplicates.
 *
 * Usage: node eos-crash-child.js '<json: { toml, killAtSeq, markerPath }>'
 * Before dying it writes the committed seq to `markerPath` (synchronously).
 */
import { writeFileSync } from 'node:fs';
import { createKafkajsClient, type KafkaClientFactory } from '../../src/sinks/kafka-client.js';
import { SinkRun } from './sink-harness.js';

const { toml, killAtSeq, markerPath } = JSON.parse(process.argv[2] ?? '{}') as { toml: string; killAtSeq: number; markerPath: string };

const killAfterCommit: KafkaClientFactory = (cfg, clientId, logger, ctx) => {
  const inner = createKafkajsClient(cfg, clientId, logger, ctx);
  return {
    connect: () => inner.connect(),
    disconnect: () => inner.disconnect(),
    committedCursor: () => inner.committedCursor!(),
    async send(batch, timeoutMs, lastSeq) {
      await inner.send(batch, timeoutMs, lastSeq);
      // send() resolved: the transaction is committed. The sink would now move the journal cursor.
      if (lastSeq !== undefined && lastSeq >= killAtSeq) {
        writeFileSync(markerPath, String(lastSeq));
        process.kill(process.pid, 'SIGKILL');
        await new Promise(() => undefined);
      }
    },
  };
};

const run = await new SinkRun(toml, { createClient: killAfterCommit, echo: true }).open();
await run.sink.start();
