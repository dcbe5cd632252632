import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { BoundedFrame } from '../../src/sources/serial/bounded-frame.js';
import { DelimiterFramer, FixedLengthFramer, InterByteTimeoutFramer, RegexFramer, SlipFramer, createFramer, type Framer } from '../../src/sources/serial/framing.js';

function collect(): { frames: string[]; oversize: number[]; started: number[]; events: { frame: (f: Buffer) => void; oversize: (n: number) => void; oversizeStarted: (n: number) => void } } {
  const frames: string[] = [];
  const oversize: number[] = [];
  const started: number[] = [];
  return { frames, oversize, started, events: { frame: (f) => frames.push(f.toString('latin1')), oversize: (n) => oversize.push(n), oversizeStarted: (n) => started.push(n) } };
}

/** Feeds `input` in chunks of every size from 1 to 7 bytes, to prove frames do not depend on how reads split. */
function feedSplit(make: (events: ReturnType<typeof collect>['events']) => Framer, input: string): string[][] {
  const results: string[][] = [];
  for (let size = 1; size <= 7; size++) {
    const c = collect();
    const f = make(c.events);
    const buf = Buffer.from(input, 'latin1');
    for (let i = 0; i < buf.length; i += size) f.push(buf.subarray(i, i + size));
    results.push(c.frames);
  }
  return results;
}

test('line framing: \\n and \\r\\n lines, blank lines skipped, any read split', () => {
  for (const frames of feedSplit((e) => createFramer({ framing: 'line', maxFrameBytes: 100, interbyteTimeoutMs: 50 }, e), 'a,1\r\nb,2\n\r\n\nc,3\npartial')) {
    assert.deepEqual(frames, ['a,1', 'b,2', 'c,3']);
  }
});

test('delimiter framing: a multi-byte delimiter that shares a prefix with the data, split across reads', () => {
  const make = (e: ReturnType<typeof collect>['events']) => new DelimiterFramer(Buffer.from('ABAC'), 100, e);
  for (const frames of feedSplit(make, 'xABABACyABAABACzzABAC')) {
    assert.deepEqual(frames, ['xAB', 'yABA', 'zz']);
  }
  const c = collect();
  createFramer({ framing: 'delimiter', delimiterHex: '03', maxFrameBytes: 100, interbyteTimeoutMs: 50 }, c.events).push(Buffer.from('\x02one\x03\x02two\x03', 'latin1'));
  assert.deepEqual(c.frames, ['\x02one', '\x02two']);
});

test('fixed framing: every frame_length bytes, whatever the reads', () => {
  for (const frames of feedSplit((e) => new FixedLengthFramer(4, e), 'abcdefghijklmn')) {
    assert.deepEqual(frames, ['abcd', 'efgh', 'ijkl']);
  }
});

test('regex framing: frames end at matches, split across reads', () => {
  for (const frames of feedSplit((e) => new RegexFramer('[;|]', 100, e), 'a=1;b=2|c=3;;d')) {
    assert.deepEqual(frames, ['a=1', 'b=2', 'c=3']);
  }
});

test('SLIP framing: END ends frames, ESC sequences undone, leading END gives no empty frame', () => {
  const input = Buffer.from([0xc0, 0x01, 0xdb, 0xdc, 0x02, 0xc0, 0xdb, 0xdd, 0x03, 0xc0, 0x04]).toString('latin1');
  for (const frames of feedSplit((e) => new SlipFramer(100, e), input)) {
    assert.deepEqual(frames.map((f) => [...Buffer.from(f, 'latin1')]), [
      [0x01, 0xc0, 0x02],
      [0xdb, 0x03],
    ]);
  }
});

test('inter-byte timeout framing: a frame ends when the line is quiet for the timeout', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const c = collect();
    const f = new InterByteTimeoutFramer(50, 100, c.events);
    f.push(Buffer.from('ab'));
    mock.timers.tick(30);
    f.push(Buffer.from('cd'));
    mock.timers.tick(30);
    assert.deepEqual(c.frames, [], 'bytes 30 ms apart belong to one frame');
    mock.timers.tick(25);
    assert.deepEqual(c.frames, ['abcd']);
    f.push(Buffer.from('ef'));
    mock.timers.tick(60);
    assert.deepEqual(c.frames, ['abcd', 'ef']);
    f.push(Buffer.from('gh'));
    assert.equal(f.reset(), 2, 'a partial frame is reported at reset, its timer cancelled');
    mock.timers.tick(100);
    assert.deepEqual(c.frames, ['abcd', 'ef']);
  } finally {
    mock.timers.reset();
  }
});

test('inter-byte timeout framing: a frame over max_frame_bytes is discarded until the next silence', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const c = collect();
    const f = new InterByteTimeoutFramer(50, 8, c.events);
    f.push(Buffer.from('0123456789'));
    assert.deepEqual(c.started, [10], 'noticed when it passes the limit');
    assert.deepEqual(c.oversize, []);
    f.push(Buffer.from('more'));
    mock.timers.tick(60);
    assert.deepEqual(c.oversize, [14], 'reported when it ends, with all its bytes');
    f.push(Buffer.from('ok'));
    mock.timers.tick(60);
    assert.deepEqual(c.frames, ['ok']);
  } finally {
    mock.timers.reset();
  }
});

// `slack`: what a framer may hold beyond max_frame_bytes while a delimiter could still be arriving ("\r" of a line, a regex match).
for (const [mode, make, delimiter, slack] of [
  ['line', (e: ReturnType<typeof collect>['events']) => createFramer({ framing: 'line', maxFrameBytes: 1024, interbyteTimeoutMs: 50 }, e), '\n', 1],
  ['delimiter', (e: ReturnType<typeof collect>['events']) => new DelimiterFramer(Buffer.from('\r\n'), 1024, e), '\r\n', 0],
  ['regex', (e: ReturnType<typeof collect>['events']) => new RegexFramer('\\r?\\n', 1024, e), '\n', 256],
  ['slip', (e: ReturnType<typeof collect>['events']) => new SlipFramer(1024, e), '\xc0', 0],
] as const) {
  test(`${mode} framing: a 1 MB frame with no delimiter never holds more than max_frame_bytes, is reported once with all its bytes, and framing resumes after the next delimiter`, () => {
    const c = collect();
    const f = make(c.events);
    f.push(Buffer.from(`before${delimiter}`, 'latin1'));
    let maxBuffered = 0;
    let maxCapacity = 0;
    const chunk = Buffer.alloc(4096, 0x41);
    for (let sent = 0; sent < 1 << 20; sent += chunk.length) {
      f.push(chunk);
      maxBuffered = Math.max(maxBuffered, f.bufferedBytes);
      maxCapacity = Math.max(maxCapacity, f.capacityBytes);
    }
    assert.ok(maxBuffered <= 1024 + slack, `held ${maxBuffered} bytes`);
    assert.ok(maxCapacity <= 1024 + slack, `allocated ${maxCapacity} bytes`);
    assert.equal(c.started.length, 1, 'noticed once, while it goes on');
    assert.deepEqual(c.oversize, [], 'not ended yet');
    f.push(Buffer.from(`tail of the long one${delimiter}after${delimiter}`, 'latin1'));
    assert.deepEqual(c.oversize, [(1 << 20) + 'tail of the long one'.length], 'one oversized frame, every byte up to its delimiter');
    assert.deepEqual(c.frames, ['before', 'after']);
  });
}

test('a single read holding a frame over the limit and its delimiter drops just that frame', () => {
  const c = collect();
  const f = new DelimiterFramer(Buffer.from('\n'), 4, c.events);
  f.push(Buffer.from('ok\ntoolong\nok2\n'));
  assert.deepEqual(c.frames, ['ok', 'ok2']);
  assert.deepEqual(c.oversize, [7]);
});

test('BoundedFrame grows by doubling but never past its limit', () => {
  const b = new BoundedFrame(1000, () => assert.fail('not oversized'));
  b.addRange(Buffer.alloc(999), 0, 999);
  assert.equal(b.capacity, 1000);
  b.addByte(1);
  assert.equal(b.take()!.length, 1000);
});
