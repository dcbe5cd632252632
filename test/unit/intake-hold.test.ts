import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IntakeHold } from '../../src/sources/intake-hold.js';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('no commit due: the next packet goes on at once', () => {
  const hold = new IntakeHold(() => false);
  let n = 0;
  hold.pass(() => n++);
  assert.equal(n, 1);
});

test('a commit due: held until the commit, then released from a fresh turn of the event loop, never from inside the commit listener', async () => {
  let due = true;
  const hold = new IntakeHold(() => due);
  const order: string[] = [];
  hold.pass(() => order.push('a'));
  due = false;
  // Once something is held, what follows waits behind it (order).
  hold.pass(() => order.push('b'));
  assert.equal(hold.holding, 2);
  hold.committed();
  assert.deepEqual(order, [], 'not from inside the listener');
  await turn();
  assert.deepEqual(order, ['a', 'b']);
  assert.equal(hold.holding, 0);
});

test('a commit that does not come (a failing disk) holds a packet 200 ms at most', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const hold = new IntakeHold(() => true);
  let n = 0;
  hold.pass(() => n++);
  t.mock.timers.tick(199);
  assert.equal(n, 0);
  t.mock.timers.tick(1);
  assert.equal(n, 1);
});

test('open() lets everything go now (connection closed, source stopping)', () => {
  const hold = new IntakeHold(() => true);
  let n = 0;
  hold.pass(() => n++);
  hold.pass(() => n++);
  hold.open();
  assert.equal(n, 2);
  assert.equal(hold.holding, 0);
});
