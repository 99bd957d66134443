// rewind as a test fixture for node: starts `rewind replay` (or `record`) on
// a free port of 127.0.0.1 and gives each test a scope of its own.
//
//   import { startReplay } from './rewind.mjs';
//   const rewind = await startReplay({ db: 'recordings/app.sqlite' });
//   const client = new OpenAI({ baseURL: rewind.scopeUrl('my test') + '/v1', apiKey: 'x' });
//   ...
//   assert.deepEqual(await rewind.misses('my test'), []);
//   await rewind.stop();
//
// No dependency beyond node (>= 18: fetch). See README.md beside this file.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const SCOPE_MAX = 128;

// A scope name for any text: characters outside [A-Za-z0-9._~-] become `_`;
// a name longer than 128 keeps its start and gains a hash of the whole.
export function scopeName(text) {
  let name = String(text).replace(/[^A-Za-z0-9._~-]/g, '_') || '_';
  if (name.length > SCOPE_MAX) {
    const digest = createHash('sha1').update(String(text)).digest('hex').slice(0, 12);
    name = `${name.slice(0, SCOPE_MAX - 13)}-${digest}`;
  }
  return name;
}

// The rewind binary: `bin`, else $REWIND_BIN, else `rewind` on PATH.
export function findBinary(bin) {
  const candidates = bin || process.env.REWIND_BIN
    ? [bin || process.env.REWIND_BIN]
    : (process.env.PATH || '').split(delimiter).filter(Boolean).map((d) => join(d, 'rewind'));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {}
  }
  throw new Error(bin || process.env.REWIND_BIN
    ? `rewind binary ${candidates[0]} is not executable`
    : 'no rewind binary: pass { bin }, set REWIND_BIN, or put rewind on PATH');
}

// The failure text for misses (journal entries): rewind's explanation of each.
export function explain(misses) {
  const lines = [`rewind: ${misses.length} request${misses.length === 1 ? '' : 's'} missed the recording:`];
  for (const m of misses) {
    lines.push(`  ${m.method} ${m.path}: ${m.explanation || `no recorded response (key ${m.key})`}`);
  }
  return lines.join('\n');
}

// The report line for near answers (journal entries with outcome "near",
// --on-miss nearest): each one's request, the recording that answered it
// and the fields it differs in.
export function explainNear(near) {
  const lines = [`rewind: ${near.length} near answer${near.length === 1 ? '' : 's'}:`];
  for (const n of near) {
    const from = n.nearest || {};
    lines.push(`  ${n.method} ${n.path}: answered from #${from.id ?? n.exchange}, which differs in: ` +
      `${(from.differences || []).join(', ')}`);
  }
  return lines.join('\n');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function start(mode, { db, bin, backend, args = [], timeoutMs = 30000, env, strictNear = false } = {}) {
  if (!db && mode !== 'serve') throw new Error(`rewind ${mode}: no recording; pass { db }`);
  if (mode === 'record' && !backend) throw new Error('rewind record: pass { backend }');
  const binary = findBinary(bin);
  const work = mkdtempSync(join(tmpdir(), 'rewind-node-'));
  const portFile = join(work, 'port');
  const errFile = join(work, 'stderr');
  const argv = [mode, ...(db ? ['--db', db] : []), ...(mode === 'record' ? ['--backend', backend] : []),
    '--listen', '127.0.0.1:0', '--port-file', portFile, ...args];
  const errFd = openSync(errFile, 'w');
  const child = spawn(binary, argv, { stdio: ['ignore', 'ignore', errFd], env: env || process.env });
  closeSync(errFd);
  let exit = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => { exit = { code, signal }; resolve(exit); });
    child.on('error', (e) => { exit = { code: null, signal: null, error: e }; resolve(exit); });
  });
  const log = () => { try { return readFileSync(errFile, 'utf8'); } catch { return ''; } };
  const command = [binary, ...argv].join(' ');

  let port = 0;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const text = readFileSync(portFile, 'utf8');
      if (text.endsWith('\n')) { port = Number.parseInt(text, 10); break; }
    } catch {}
    if (exit) {
      const text = log().trim();
      rmSync(work, { recursive: true, force: true });
      throw new Error(`${command} exited with ${exit.error ? exit.error.message : exit.code} before listening:\n${text}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      const text = log().trim();
      rmSync(work, { recursive: true, force: true });
      throw new Error(`${command} did not bind a port within ${timeoutMs} ms:\n${text}`);
    }
    await sleep(20);
  }
  const url = `http://127.0.0.1:${port}`;

  async function admin(method, path, scope) {
    const q = scope === undefined || scope === null ? '' : `?scope=${encodeURIComponent(scope)}`;
    const headers = process.env.REWIND_ADMIN_TOKEN
      ? { authorization: `Bearer ${process.env.REWIND_ADMIN_TOKEN}` } : {};
    let res;
    try {
      res = await fetch(`${url}/__rewind/${path}${q}`, { method, headers });
    } catch (e) {
      throw new Error(`${method} ${url}/__rewind/${path}${q}: ${e.cause?.message || e.message}` +
        (exit ? ` (rewind exited with ${exit.code}: ${log().trim()})` : ''));
    }
    const body = await res.text();
    if (!res.ok) throw new Error(`${method} ${url}/__rewind/${path}${q}: ${res.status} ${body}`);
    return body ? JSON.parse(body) : {};
  }

  // What fails a scope: its misses, and with strictNear its near answers.
  async function failures(scope) {
    const journal = await server.requests(scope);
    const misses = journal.filter((r) => r.outcome === 'miss');
    const near = strictNear ? journal.filter((r) => r.outcome === 'near') : [];
    const parts = [];
    if (misses.length) parts.push(explain(misses));
    if (near.length) parts.push(`${explainNear(near)}\n(strictNear: a near answer fails the test)`);
    return parts.join('\n');
  }

  let stopped = null;
  const server = {
    url,
    port,
    mode,
    process: child,
    // Base URL of scope `name` (no trailing slash: add /v1 for an OpenAI client).
    scopeUrl: (name) => `${url}/__scope/${name}`,
    // Restarts the repeat counters and journal of one scope, or of all.
    reset: async (scope) => { await admin('POST', 'reset', scope); },
    // The journal (of one scope, or all), newest last.
    requests: async (scope) => (await admin('GET', 'requests', scope)).requests || [],
    misses: async (scope) => (await server.requests(scope)).filter((r) => r.outcome === 'miss'),
    // Answers from the nearest recording (--on-miss nearest).
    nearAnswers: async (scope) => (await server.requests(scope)).filter((r) => r.outcome === 'near'),
    // Recordings not served since start or the last reset.
    unused: async (scope) => (await admin('GET', 'unused', scope)).unused || [],
    // Throws an Error carrying rewind's explanation if the scope (or any)
    // missed, or, with { strictNear: true }, got a near answer.
    assertNoMisses: async (scope) => {
      const text = await failures(scope);
      if (text) throw new Error(text);
    },
    // For node:test: resets the scope named after test context `t`, fails
    // the test after it if that scope missed, and returns the scope's URL.
    //   test('x', async (t) => { const base = await rewind.forTest(t); ... });
    forTest: async (t) => {
      const name = scopeName(t.name);
      await server.reset(name);
      t.after(() => server.assertNoMisses(name));
      return server.scopeUrl(name);
    },
    // For node:test, when the test may fail on its own too: runs fn(url) in
    // the scope named after test context `t` (reset first); if the scope
    // missed, throws rewind's explanation, followed by fn's own error if it
    // failed too (an after hook's error is not shown once the test failed).
    //   test('x', (t) => rewind.inScope(t, async (base) => { ... }));
    inScope: async (t, fn) => {
      const name = scopeName(t.name);
      await server.reset(name);
      let error = null;
      try {
        await fn(server.scopeUrl(name));
      } catch (e) {
        error = e;
      }
      const text = await failures(name);
      if (text) {
        throw error
          ? new Error(`${text}\nand the test failed: ${error.message}`, { cause: error })
          : new Error(text);
      }
      if (error) throw error;
    },
    // What rewind wrote on stderr so far.
    log,
    // SIGTERM (in-flight requests finish; SIGKILL after timeoutMs), then
    // { code, signal, log }: code 1 is --strict's or --require-all's verdict.
    stop: ({ timeoutMs: stopMs = 30000 } = {}) => {
      stopped ||= (async () => {
        if (!exit) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), stopMs);
          await exited;
          clearTimeout(timer);
        }
        const result = { code: exit.code, signal: exit.signal, log: log() };
        rmSync(work, { recursive: true, force: true });
        return result;
      })();
      return stopped;
    },
  };
  return server;
}

// startReplay({ db, bin, args, timeoutMs, env }): `rewind replay --db DB`.
export function startReplay(options) {
  return start('replay', options);
}

// startRecord({ db, backend, bin, args, timeoutMs, env }): `rewind record`
// into DB from BACKEND; the same object as startReplay.
export function startRecord(options) {
  return start('record', options);
}

// startServe({ bin, args, db }): `rewind serve`, the dummy engine (a backend
// for tests); the same object.
export function startServe(options = {}) {
  return start('serve', options);
}
