// The official `openai` package for the tests, installed with npm into a
// cache directory ($REWIND_CLIENTS_CACHE, default ~/.cache/rewind-clients,
// subdirectory node-fixture) the first time. Resolves to { OpenAI, version }
// or, when it is not installed and npm's registry is unreachable, to
// { skip: reason }.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export async function loadOpenAI() {
  const cache = process.env.REWIND_CLIENTS_CACHE ||
    join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'rewind-clients');
  const dir = join(cache, 'node-fixture');
  const stamp = join(dir, '.installed');
  if (!existsSync(stamp)) {
    const ping = spawnSync('npm', ['ping', '--fetch-retries=0', '--fetch-timeout=20000'],
      { timeout: 60000, encoding: 'utf8' });
    if (ping.error || ping.status !== 0) {
      return { skip: `npm's registry is unreachable and openai is not installed in ${dir}` };
    }
    mkdirSync(dir, { recursive: true });
    if (!existsSync(join(dir, 'package.json'))) {
      writeFileSync(join(dir, 'package.json'), '{"name":"rewind-node-fixture-test","private":true}\n');
    }
    const npm = spawnSync('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund',
      '--loglevel=error', 'openai'], { timeout: 300000, encoding: 'utf8' });
    if (npm.error || npm.status !== 0) {
      throw new Error(`npm could not install openai into ${dir}: ${npm.error?.message || npm.stderr}`);
    }
    writeFileSync(stamp, '');
  }
  const require = createRequire(join(dir, 'package.json'));
  const entry = require.resolve('openai');
  const mod = await import(pathToFileURL(entry).href);
  const version = JSON.parse(readFileSync(join(dir, 'node_modules', 'openai', 'package.json'), 'utf8')).version;
  return { OpenAI: mod.default?.OpenAI || mod.OpenAI || mod.default, version };
}
