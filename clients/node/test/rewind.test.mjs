// The node module against the real rewind ($REWIND_BIN): record through
// `rewind record` in front of `rewind serve`, replay with serve stopped,
// scopes, the journal, unused recordings, --strict, and the official
// openai client.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { explain, explainNear, scopeName, startRecord, startReplay, startServe } from '../rewind.mjs';
import { loadOpenAI } from './openai.mjs';

const work = mkdtempSync(join(tmpdir(), 'rewind-node-test-'));
after(() => rmSync(work, { recursive: true, force: true }));

async function chat(base, text, system = 'You are terse.') {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'system', content: system }, { role: 'user', content: text }] }),
  });
  const body = await res.json();
  return { status: res.status, rewind: res.headers.get('x-rewind'), body,
    text: body.choices?.[0]?.message?.content };
}

// Records `requests` (a function of the base URL) through rewind record in
// front of a fresh serve (args), then stops both.
async function record(db, serveArgs, requests) {
  const serve = await startServe({ args: ['--quiet', ...serveArgs] });
  try {
    const rec = await startRecord({ db, backend: serve.url, args: ['--quiet'] });
    try {
      return await requests(rec);
    } finally {
      assert.equal((await rec.stop()).code, 0);
    }
  } finally {
    await serve.stop();
  }
}

describe('record, then replay with the backend gone', () => {
  const db = join(work, 'two.sqlite');
  let rewind;
  before(async () => {
    await record(db, ['--seed', '7'], async (rec) => {
      assert.equal((await chat(rec.scopeUrl('rec'), 'The capital of France?')).status, 200);
      assert.equal((await chat(rec.url, 'A colour?')).status, 200);
      const journal = await rec.requests();
      assert.deepEqual(journal.map((r) => [r.scope, r.path, r.outcome]),
        [['rec', '/v1/chat/completions', 'record'], [null, '/v1/chat/completions', 'record']]);
    });
    rewind = await startReplay({ db, args: ['--latency', 'none'] });
  });
  after(() => rewind.stop());

  test('hits in a scope, and the journal says so', async () => {
    await rewind.reset('a');
    const r = await chat(rewind.scopeUrl('a'), 'The capital of France?');
    assert.equal(r.status, 200);
    assert.equal(r.rewind, 'hit');
    assert.equal(r.text, 'The capital of France?');
    const journal = await rewind.requests('a');
    assert.equal(journal.length, 1);
    assert.equal(journal[0].scope, 'a');
    assert.equal(journal[0].method, 'POST');
    assert.equal(journal[0].path, '/v1/chat/completions');
    assert.equal(journal[0].outcome, 'hit');
    assert.equal(journal[0].exchange, 1);
    assert.deepEqual(await rewind.misses('a'), []);
  });

  test('a miss is in the journal with rewind\'s explanation', async () => {
    await rewind.reset('b');
    const r = await chat(rewind.scopeUrl('b'), 'The capital of Italy?');
    assert.equal(r.status, 404);
    const misses = await rewind.misses('b');
    assert.equal(misses.length, 1);
    assert.match(misses[0].explanation, /^no recorded response for POST \/v1\/chat\/completions .*nearest recording is #\d, which differs in: messages\[1\]\.content; messages\[1\]\.content: recorded "[^"]*" sent "The capital of Italy\?"$/);
    assert.deepEqual(misses[0].nearest.differences, ['messages[1].content']);
    await assert.rejects(rewind.assertNoMisses('b'), (e) => {
      assert.match(e.message, /^rewind: 1 request missed the recording:\n {2}POST \/v1\/chat\/completions: no recorded response/);
      return true;
    });
    // The other scope's journal does not see it.
    assert.deepEqual(await rewind.misses('a'), []);
  });

  test('unused: what a scope (or the server) never served', async () => {
    await rewind.reset('c');
    await chat(rewind.scopeUrl('c'), 'A colour?');
    assert.deepEqual((await rewind.unused('c')).map((u) => [u.id, u.method, u.path]),
      [[1, 'POST', '/v1/chat/completions']]);
  });

  test('forTest: the scope is named after the test and reset', async (t) => {
    const base = await rewind.forTest(t);
    assert.equal(base, `${rewind.url}/__scope/forTest__the_scope_is_named_after_the_test_and_reset`);
    assert.equal((await chat(base, 'A colour?')).rewind, 'hit');
  });
});

test('near answers: listed on their own, and failing the test with strictNear', async () => {
  const db = join(work, 'near.sqlite');
  await record(db, ['--seed', '7'], (rec) => chat(rec.url, 'hello'));
  const ask = (base, stream) => fetch(`${base}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', temperature: 0.9, ...(stream ? { stream: true } : {}),
      messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'hello' }] }) });
  for (const strictNear of [false, true]) {
    const rewind = await startReplay({ db, args: ['--latency', 'none', '--on-miss', 'nearest'], strictNear });
    try {
      const near = await ask(rewind.url, false);
      assert.equal(near.status, 200);
      assert.equal(near.headers.get('x-rewind'), 'near');
      // A streamed request keeps its shape: the recording is not streamed.
      assert.equal((await ask(rewind.url, true)).status, 404);
      const answers = await rewind.nearAnswers();
      assert.equal(answers.length, 1);
      assert.equal(explainNear(answers),
        'rewind: 1 near answer:\n  POST /v1/chat/completions: answered from #1, which differs in: temperature');
      const misses = await rewind.misses();
      assert.match(misses[0].explanation, /#1 cannot answer it: it differs in stream/);
      await assert.rejects(rewind.assertNoMisses(), (e) => {
        assert.match(e.message, /^rewind: 1 request missed the recording:/);
        assert.equal(e.message.includes('rewind: 1 near answer:'), strictNear);
        return true;
      });
    } finally {
      await rewind.stop();
    }
  }
});

test('forTest and inScope fail a test that missed, with the explanation', async () => {
  const db = join(work, 'fortest.sqlite');
  await record(db, ['--seed', '7'], (rec) => chat(rec.url, 'hello'));
  // A suite of its own, run by node:test: forTest's after hook must fail it.
  const file = join(work, 'inner.test.mjs');
  writeFileSync(file, `
    import { after, test } from 'node:test';
    import { startReplay } from ${JSON.stringify(new URL('../rewind.mjs', import.meta.url).href)};
    const rewind = await startReplay({ db: ${JSON.stringify(db)} });
    after(() => rewind.stop());
    const ask = (base, content) => fetch(base + '/v1/chat/completions', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'system', content: 'You are terse.' },
                                                    { role: 'user', content }] }) });
    test('same prompt', async (t) => { await ask(await rewind.forTest(t), 'hello'); });
    test('changed prompt', async (t) => { await ask(await rewind.forTest(t), 'hello there'); });
    test('in scope, failing on its own', (t) => rewind.inScope(t, async (base) => {
      if (!(await ask(base, 'hello again')).ok) throw new Error('the test saw a 404');
    }));
    test('in scope, passing', (t) => rewind.inScope(t, async (base) => {
      if (!(await ask(base, 'hello')).ok) throw new Error('the test saw a 404');
    }));
  `);
  // Its own node process: node:test does not run files from within a test.
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const inner = spawnSync(process.execPath, ['--test', '--test-reporter=tap', file],
    { encoding: 'utf8', timeout: 60000, env });
  assert.equal(inner.status, 1, inner.stdout + inner.stderr);
  assert.match(inner.stdout, /^ok \d+ - same prompt$/m);
  assert.match(inner.stdout, /^not ok \d+ - changed prompt$/m);
  assert.match(inner.stdout, /^ok \d+ - in scope, passing$/m);
  assert.match(inner.stdout, /^not ok \d+ - in scope, failing on its own$/m);
  const own = inner.stdout.slice(inner.stdout.indexOf('# Subtest: in scope, failing on its own'));
  assert.match(own, /rewind: 1 request missed the recording:\n\s+POST \/v1\/chat\/completions: no recorded response.*differs in: messages\[1\]\.content/);
  assert.match(own, /\n\s+and the test failed: the test saw a 404/);
  assert.match(inner.stdout, /rewind: 1 request missed the recording:\n\s+POST \/v1\/chat\/completions: no recorded response.*differs in: messages\[1\]\.content/);
});

test('scopes run in parallel, each with its own repeat counters', async () => {
  const db = join(work, 'twice.sqlite');
  // The same request twice, two different answers.
  const recorded = await record(db, ['--seed', '7', '--output', 'random'], async (rec) =>
    [(await chat(rec.url, 'hi')).text, (await chat(rec.url, 'hi')).text]);
  assert.notEqual(recorded[0], recorded[1]);
  const rewind = await startReplay({ db });
  try {
    const names = Array.from({ length: 8 }, (_, i) => `parallel-${i}`);
    await Promise.all(names.map((n) => rewind.reset(n)));
    const firsts = await Promise.all(names.map((n) => chat(rewind.scopeUrl(n), 'hi')));
    assert.deepEqual(firsts.map((r) => r.text), names.map(() => recorded[0]));
    const seconds = await Promise.all(names.map((n) => chat(rewind.scopeUrl(n), 'hi')));
    assert.deepEqual(seconds.map((r) => r.text), names.map(() => recorded[1]));
    // Resetting one scope starts it over; the others go on.
    await rewind.reset('parallel-0');
    assert.equal((await chat(rewind.scopeUrl('parallel-0'), 'hi')).text, recorded[0]);
    assert.equal((await rewind.requests('parallel-0')).length, 1);
    assert.equal((await rewind.requests('parallel-1')).length, 2);
  } finally {
    await rewind.stop();
  }
});

test('--strict: stop() reports exit 1 and the miss after a miss, 0 without', async () => {
  const db = join(work, 'strict.sqlite');
  await record(db, ['--seed', '7'], (rec) => chat(rec.url, 'hello'));
  let rewind = await startReplay({ db, args: ['--strict'] });
  assert.equal((await chat(rewind.url, 'hello')).status, 200);
  assert.equal((await rewind.stop()).code, 0);
  rewind = await startReplay({ db, args: ['--strict'] });
  assert.equal((await chat(rewind.url, 'goodbye')).status, 404);
  const stopped = await rewind.stop();
  assert.equal(stopped.code, 1);
  assert.match(stopped.log, /rewind: 1 requests?, 0 hits, 1 miss/);
  // The summary names each miss as the log does (no query string).
  assert.match(stopped.log, /rewind: miss \(request 1\): POST \/v1\/chat\/completions \(key [0-9a-f]{32}\); nearest recording is #1, which differs in: messages\[1\]\.content/);
  assert.match(stopped.log, /rewind: failed: 1 miss \(--strict\)/);
});

test('a rewind that cannot start says why', async () => {
  await assert.rejects(startReplay({ db: join(work, 'no', 'such.sqlite') }),
    /replay --db .*no[/]such\.sqlite.* exited with 2 before listening:\n.+/s);
  await assert.rejects(startReplay({ db: 'x.sqlite', bin: join(work, 'absent') }),
    /rewind binary .*absent is not executable/);
  await assert.rejects(startReplay({}), /no recording/);
  await assert.rejects(startRecord({ db: 'x.sqlite' }), /pass \{ backend \}/);
});

test('scope names and explanations', () => {
  assert.equal(scopeName('a test [x/y]'), 'a_test__x_y_');
  assert.equal(scopeName('ok-1.2_~'), 'ok-1.2_~');
  const a = scopeName(`${'t'.repeat(200)}a`);
  assert.equal(a.length, 128);
  assert.notEqual(a, scopeName(`${'t'.repeat(200)}b`));
  assert.equal(explain([{ method: 'GET', path: '/x', explanation: 'why' }]),
    'rewind: 1 request missed the recording:\n  GET /x: why');
});

describe('the official openai client', () => {
  let openai;
  const db = join(work, 'openai.sqlite');
  before(async () => { openai = await loadOpenAI(); });

  test('records, replays the same text and stream, and a changed prompt fails with the explanation', async (t) => {
    if (openai.skip) return t.skip(openai.skip);
    const { OpenAI, version } = openai;
    t.diagnostic(`openai ${version}`);
    const ask = async (base, content, stream) => {
      const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-test', maxRetries: 0 });
      const params = { model: 'm', messages: [{ role: 'user', content }] };
      if (!stream) return (await client.chat.completions.create(params)).choices[0].message.content;
      let text = '';
      for await (const chunk of await client.chat.completions.create({ ...params, stream: true })) {
        text += chunk.choices[0]?.delta?.content ?? '';
      }
      return text;
    };
    const recorded = await record(db, ['--seed', '7', '--output', 'random'], async (rec) =>
      [await ask(rec.scopeUrl('rec'), 'Tell me a story.', false), await ask(rec.scopeUrl('rec'), 'And a poem.', true)]);
    const rewind = await startReplay({ db, args: ['--latency', 'none'] });
    try {
      await rewind.reset('replay');
      const base = rewind.scopeUrl('replay');
      assert.deepEqual([await ask(base, 'Tell me a story.', false), await ask(base, 'And a poem.', true)], recorded);
      const other = rewind.scopeUrl('changed');
      await assert.rejects(ask(other, 'Tell me a joke.', false), (e) => {
        assert.equal(e.status, 404);
        assert.match(e.message, /no recorded response for POST \/v1\/chat\/completions .*nearest recording is #1, which differs in: messages\[0\]\.content/);
        return true;
      });
      assert.match((await rewind.misses('changed'))[0].explanation, /differs in: messages\[0\]\.content/);
      assert.deepEqual(await rewind.misses('replay'), []);
    } finally {
      await rewind.stop();
    }
  });
});
