import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configErrorLines, parseConfig } from '../../src/config/load.js';
import type { SluiceError } from '../../src/errors.js';

const sink = (extra: string): string => `[[sink]]\nbrokers = ["k:9092"]\n${extra}`;
const errors = (text: string): string[] => {
  try {
    parseConfig(text, { secrets: { env: { PW: 's3cret' }, readFile: () => 'tok' } });
  } catch (err) {
    return configErrorLines(err as SluiceError);
  }
  return [];
};

test('sink defaults: zstd, at_least_once, cursor topic sluice-cursors, no dead-letter topic, raw values', () => {
  const c = parseConfig(sink('[[sink.route]]\nmatch = "a/#"\ntopic = "t"\n'));
  const s = c.sink[0]!;
  assert.equal(s.compression, 'zstd');
  assert.equal(s.delivery, 'at_least_once');
  assert.equal(s.cursorTopic, 'sluice-cursors');
  assert.equal(s.deadLetterTopic, undefined);
  assert.equal(s.route[0]!.valueFormat, 'raw');
});

test('sasl: plain/scram need username and a password; oauthbearer needs exactly one token source and no password', () => {
  assert.deepEqual(errors(sink('[sink.sasl]\nmechanism = "scram-sha-512"\nusername = "u"\npassword_env = "PW"\n')), []);
  assert.deepEqual(errors(sink('[sink.sasl]\nmechanism = "oauthbearer"\ntoken_file = "/run/tok"\n')), []);
  assert.deepEqual(errors(sink('[sink.sasl]\nmechanism = "plain"\npassword_env = "PW"\n')), ['sink[0].sasl.username: required for plain']);
  assert.deepEqual(errors(sink('[sink.sasl]\nmechanism = "scram-sha-256"\nusername = "u"\n')), ['sink[0].sasl: scram-sha-256 needs one of password, password_env, password_file']);
  assert.deepEqual(errors(sink('[sink.sasl]\nmechanism = "oauthbearer"\n')), ['sink[0].sasl: oauthbearer needs exactly one of token_file, token_command']);
  assert.deepEqual(errors(sink('[sink.sasl]\nmechanism = "oauthbearer"\ntoken_file = "a"\ntoken_command = "b"\n')), ['sink[0].sasl: oauthbearer needs exactly one of token_file, token_command']);
  assert.deepEqual(errors(sink('[sink.sasl]\nmechanism = "oauthbearer"\ntoken_file = "a"\nusername = "u"\n')), ['sink[0].sasl: oauthbearer takes a token, not username/password']);
});

test('the SASL password resolves to a Secret that prints redacted', () => {
  const c = parseConfig(sink('[sink.sasl]\nmechanism = "plain"\nusername = "u"\npassword_env = "PW"\n'), { secrets: { env: { PW: 's3cret' }, readFile: () => '' } });
  const pw = c.sink[0]!.sasl!.password!;
  assert.equal(pw.reveal(), 's3cret');
  assert.ok(!JSON.stringify(c).includes('s3cret'));
  assert.ok(!String(pw).includes('s3cret'));
});
