"""Tests of the rewind pytest plugin: each runs a small suite with pytester
against the real binary ($REWIND_BIN) and `rewind serve` as the backend."""
import os
import signal
import subprocess
import time

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def rewind_bin():
    path = os.environ.get("REWIND_BIN")
    if not path:
        pytest.fail("set REWIND_BIN to the rewind binary", pytrace=False)
    return path


def spawn_serve(bin, workdir, *args):
    """Starts `rewind serve` on a free port; returns (process, url)."""
    port_file = os.path.join(workdir, "serve.port")
    err = open(os.path.join(workdir, "serve.err"), "wb")
    p = subprocess.Popen([bin, "serve", "--listen", "127.0.0.1:0", "--port-file", port_file,
                          "--quiet", *args], stdout=subprocess.DEVNULL, stderr=err)
    err.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(port_file) as f:
                text = f.read()
            if text.endswith("\n"):
                return p, "http://127.0.0.1:%d" % int(text)
        except (OSError, ValueError):
            pass
        assert p.poll() is None, open(os.path.join(workdir, "serve.err")).read()
        time.sleep(0.02)
    p.kill()
    pytest.fail("rewind serve did not start")


@pytest.fixture
def backend(rewind_bin, tmp_path):
    """`rewind serve`: echoes the last user message; random answers with
    --output random are seeded, different for each repeat of a request."""
    procs = []

    def start(*args):
        p, url = spawn_serve(rewind_bin, str(tmp_path), *args)
        procs.append(p)
        return url

    yield start
    for p in procs:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)


@pytest.fixture
def suite(pytester, rewind_bin, monkeypatch):
    """Writes the test files given and runs pytest on them with the plugin."""
    monkeypatch.setenv("REWIND_BIN", rewind_bin)
    monkeypatch.delenv("REWIND_DB", raising=False)
    pytester.makepyfile(helpers=HELPERS)

    def run(*args, **files):
        if files:
            pytester.makepyfile(**files)
        return pytester.runpytest_subprocess("-p", "rewind_pytest", "-p", "no:cacheprovider", *args)

    return run


HELPERS = '''
import json, urllib.request, urllib.error

def chat(base, text, system="You are terse."):
    """POSTs a chat completion under base; returns (status, headers, body)."""
    body = {"model": "m", "messages": [{"role": "system", "content": system},
                                       {"role": "user", "content": text}]}
    req = urllib.request.Request(base + "/v1/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.load(e)

def answer(body):
    return body["choices"][0]["message"]["content"]
'''
