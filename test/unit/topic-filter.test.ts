import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Router } from '../../src/sinks/router.js';
import { compileFilter } from '../../src/sinks/topic-filter.js';

test('named wildcards bind levels and fill topic and key templates', () => {
  const m = compileFilter('sensors/+site/+device/#', { topic: 'iot.telemetry', key: '{site}.{device}' });
  assert.deepEqual(m('sensors/north/pump-3/temp'), { topic: 'iot.telemetry', key: 'north.pump-3' });
  assert.deepEqual(m('sensors/north/pump-3'), { topic: 'iot.telemetry', key: 'north.pump-3' }, '# matches the parent level too');
  assert.equal(m('sensors/north'), null);
  assert.equal(m('other/north/pump-3'), null);
});

test('"#name" binds the rest; placeholders in a topic are made Kafka-safe', () => {
  const m = compileFilter('site/+s/#rest', { topic: 'raw.{s}', key: '{rest}' });
  assert.deepEqual(m('site/a b/x/y/z'), { topic: 'raw.a_b', key: 'x/y/z' });
});

test('literal filters match exactly; unnamed wildcards bind nothing; no key means null', () => {
  assert.deepEqual(compileFilter('a/b', { topic: 't' })('a/b'), { topic: 't', key: null });
  assert.equal(compileFilter('a/b', { topic: 't' })('a/b/c'), null);
  assert.deepEqual(compileFilter('a/+/c', { topic: 't', key: 'k' })('a/x/c'), { topic: 't', key: 'k' });
});

test('invalid filters and templates are refused with a reason', () => {
  assert.throws(() => compileFilter('a/#/b', { topic: 't' }), /must be the last level/);
  assert.throws(() => compileFilter('a/b+/c', { topic: 't' }), /whole level/);
  assert.throws(() => compileFilter('a/+x', { topic: 't', key: '{y}' }), /key template uses \{y\}/);
  assert.throws(() => compileFilter('a/+1x', { topic: 't' }), /wildcard name/);
});

test('router: first match wins, then the default topic, else null', () => {
  const routes = [
    { match: 'a/+x/special', topic: 'special', key: '{x}' },
    { match: 'a/+x/#', topic: 'general', key: '{x}' },
  ];
  const r = new Router(routes);
  assert.deepEqual(r.route('a/1/special'), { topic: 'special', key: '1', valueFormat: 'raw' });
  assert.deepEqual(r.route('a/1/other'), { topic: 'general', key: '1', valueFormat: 'raw' });
  assert.equal(r.route('b/1'), null);
  assert.deepEqual(new Router(routes, 'fallback').route('b/1'), { topic: 'fallback', key: null, valueFormat: 'raw' });
  assert.equal(new Router([{ ...routes[0]!, valueFormat: 'envelope' as const }]).route('a/2/special')?.valueFormat, 'envelope');
});
