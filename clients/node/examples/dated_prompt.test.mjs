// Record once: REWIND_BACKEND=URL node --test dated_prompt.test.mjs   Replay, any day after, offline: node --test dated_prompt.test.mjs
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startRecord, startReplay } from '../rewind.mjs';

const db = process.env.REWIND_DB ?? 'dated.sqlite', backend = process.env.REWIND_BACKEND;
const rewind = await (backend ? startRecord({ db, backend, args: ['--normalize', 'date'] }) : startReplay({ db }));
after(() => rewind.stop());
const ask = (base, q) => fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'm', messages: [{ role: 'system', content: `${process.env.PERSONA ?? 'You are terse.'} Now is ${new Date().toISOString()}.` }, { role: 'user', content: q }] }) });
describe('a system prompt stamped with the date', { concurrency: true }, () => { // in parallel, each test in its own scope
  for (const q of ['What is 2+2?', 'Name a colour.', 'Say hi.']) {
    test(q, (t) => rewind.inScope(t, async (base) => assert.equal((await ask(base, q)).status, 200)));
  }
});
