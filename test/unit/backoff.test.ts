import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff } from '../../src/util/backoff.js';
import { isRetriable, SluiceError } from '../../src/errors.js';

test('backoff grows exponentially with jitter in [base/2, base], capped, and resets', () => {
  const lo = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => lo.next()), [50, 100, 200, 400, 500, 500]);
  const hi = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 });
  assert.deepEqual([1, 2, 3, 4, 5].map(() => hi.next()), [100, 200, 400, 800, 1000]);
  hi.reset();
  assert.equal(hi.next(), 100);
});

test('programming errors are never retriable; coded errors say so themselves', () => {
  assert.equal(isRetriable(new TypeError('x')), false);
  assert.equal(isRetriable(new SluiceError('SLUICE_KAFKA_TIMEOUT', 't', { retriable: true })), true);
  assert.equal(isRetriable(new SluiceError('SLUICE_CONFIG_INVALID', 'c')), false);
  const cause = new Error('root');
  assert.equal(new SluiceError('SLUICE_JOURNAL_WRITE', 'w', { cause }).cause, cause);
});
