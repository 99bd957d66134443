"""pytest plugin: rewind as a test fixture.

A session fixture starts ``rewind replay`` on a recording (``--rewind-db`` or
``REWIND_DB``; the binary from ``--rewind-bin``, ``REWIND_BIN`` or PATH) on a
free loopback port, and a function fixture gives each test a base URL in a
scope of its own (``http://127.0.0.1:PORT/__scope/NAME``, NAME being the
test's name). A test whose requests missed the recording fails, with rewind's
explanation of each miss. Answers from the nearest recording (replay
``--on-miss nearest``) are reported on their own lines, and fail their test
too with ``--rewind-strict-near``. ``--rewind-record --rewind-backend URL`` runs
``rewind record`` instead, so the same suite re-records.

Fixtures: ``rewind_url`` (str), ``rewind_scope`` (Scope), ``rewind_server``
(Server, session-wide). Marker: ``@pytest.mark.rewind(allow_misses=True)``
for a test that expects misses. Needs nothing beyond pytest and the standard
library. See README.md beside this file.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

__all__ = ["Server", "Scope", "RewindError", "start"]

# What rewind accepts as a scope name.
_SCOPE_CHARS = re.compile(r"[^A-Za-z0-9._~-]")
_SCOPE_MAX = 128


class RewindError(Exception):
    """rewind could not be started, or answered an admin request badly."""


def scope_name(text):
    """A scope name for ``text``: characters outside [A-Za-z0-9._~-] become
    ``_``; a name longer than 128 keeps its start and gains a hash of the
    whole, so two long names stay apart."""
    name = _SCOPE_CHARS.sub("_", text) or "_"
    if len(name) > _SCOPE_MAX:
        digest = hashlib.sha1(text.encode()).hexdigest()[:12]
        name = name[: _SCOPE_MAX - 13] + "-" + digest
    return name


class Server:
    """A running ``rewind replay`` (or ``record``) on 127.0.0.1.

    ``url`` is its base URL (no trailing slash). ``stop()`` ends it with
    SIGTERM and returns its exit code; its stderr is in ``log()``.
    """

    def __init__(self, process, port, workdir, mode):
        self.process = process
        self.port = port
        self.mode = mode
        self.url = "http://127.0.0.1:%d" % port
        self._workdir = workdir
        self.returncode = None

    # -- admin endpoints ---------------------------------------------------

    def _admin(self, method, path, scope=None, timeout=30):
        url = self.url + "/__rewind/" + path
        if scope is not None:
            url += "?" + urllib.parse.urlencode({"scope": scope})
        req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
        token = os.environ.get("REWIND_ADMIN_TOKEN")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as e:
            raise RewindError("%s %s: %d %s" % (method, url, e.code, e.read().decode(errors="replace")))
        except OSError as e:
            raise RewindError("%s %s: %s%s" % (method, url, e, self._exited()))
        return json.loads(body) if body else {}

    def _exited(self):
        if self.process.poll() is None:
            return ""
        return " (rewind exited with %d: %s)" % (self.process.returncode, self.log().strip())

    def scope_url(self, name):
        """Base URL of scope ``name``: requests under it are served in that scope."""
        return "%s/__scope/%s" % (self.url, name)

    def reset(self, scope=None):
        """Restarts the repeat counters and journal of one scope, or of all."""
        self._admin("POST", "reset", scope)

    def requests(self, scope=None):
        """The journal: requests received (in ``scope``, or all), newest last."""
        return self._admin("GET", "requests", scope).get("requests", [])

    def misses(self, scope=None):
        """The journal's entries that missed the recording."""
        return [r for r in self.requests(scope) if r.get("outcome") == "miss"]

    def near_answers(self, scope=None):
        """The journal's answers from the nearest recording (--on-miss nearest)."""
        return [r for r in self.requests(scope) if r.get("outcome") == "near"]

    def unused(self, scope=None):
        """Recordings not served since start or the last reset."""
        return self._admin("GET", "unused", scope).get("unused", [])

    # -- lifecycle -----------------------------------------------------------

    def log(self):
        """What rewind wrote on stderr so far."""
        try:
            with open(os.path.join(self._workdir, "stderr"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, timeout=30):
        """SIGTERM, wait for in-flight requests (at most ``timeout`` s, then
        SIGKILL); returns the exit code."""
        if self.returncode is not None:
            return self.returncode
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.returncode = self.process.returncode
        return self.returncode


def find_binary(explicit=None):
    """The rewind binary: ``explicit``, else ``REWIND_BIN``, else PATH."""
    path = explicit or os.environ.get("REWIND_BIN") or shutil.which("rewind")
    if not path:
        raise RewindError("no rewind binary: set REWIND_BIN (or --rewind-bin), or put rewind on PATH")
    if not os.access(path, os.X_OK):
        raise RewindError("rewind binary %s is not executable" % path)
    return path


def start(db, bin=None, record=False, backend=None, args=(), workdir=None, timeout=30):
    """Starts ``rewind replay --db DB`` (or ``record --backend BACKEND``) on a
    free port of 127.0.0.1 and returns a Server once the port is bound."""
    if record and not backend:
        raise RewindError("record mode needs a backend: --rewind-backend URL (or REWIND_BACKEND)")
    binary = find_binary(bin)
    workdir = workdir or tempfile.mkdtemp(prefix="rewind-pytest-")
    port_file = os.path.join(workdir, "port")
    cmd = [binary, "record" if record else "replay", "--db", str(db)]
    if record:
        cmd += ["--backend", backend]
    cmd += ["--listen", "127.0.0.1:0", "--port-file", port_file] + list(args)
    with open(os.path.join(workdir, "stderr"), "wb") as err:
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    server = Server(process, 0, workdir, "record" if record else "replay")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(port_file) as f:
                text = f.read()
            if text.endswith("\n"):
                port = int(text)
                break
        except (OSError, ValueError):
            pass
        if process.poll() is not None:
            raise RewindError("%s exited with %d before listening:\n%s"
                              % (" ".join(cmd), process.returncode, server.log().strip()))
        if time.monotonic() > deadline:
            server.stop()
            raise RewindError("%s did not bind a port within %g s:\n%s"
                              % (" ".join(cmd), timeout, server.log().strip()))
        time.sleep(0.02)
    server.port = port
    server.url = "http://127.0.0.1:%d" % port
    return server


class Scope:
    """One test's scope: ``url`` is its base URL (no trailing slash: append
    ``/v1`` for an OpenAI client)."""

    def __init__(self, server, name):
        self.server = server
        self.name = name
        self.url = server.scope_url(name)

    def __str__(self):
        return self.url

    def reset(self):
        self.server.reset(self.name)

    def requests(self):
        return self.server.requests(self.name)

    def misses(self):
        return self.server.misses(self.name)

    def near_answers(self):
        return self.server.near_answers(self.name)

    def unused(self):
        return self.server.unused(self.name)


def explain(misses):
    """The failure text for a scope's misses: rewind's explanation of each."""
    lines = ["rewind: %d request%s missed the recording:" % (len(misses), "" if len(misses) == 1 else "s")]
    for m in misses:
        lines.append("  %s %s: %s" % (m.get("method"), m.get("path"),
                                      m.get("explanation") or "no recorded response (key %s)" % m.get("key")))
    return "\n".join(lines)


def explain_near(near):
    """The report lines for near answers: each request, the recording that
    answered it and the fields it differs in."""
    lines = ["rewind: %d near answer%s:" % (len(near), "" if len(near) == 1 else "s")]
    for n in near:
        nearest = n.get("nearest") or {}
        lines.append("  %s %s: answered from #%s, which differs in: %s"
                     % (n.get("method"), n.get("path"), nearest.get("id", n.get("exchange")),
                        ", ".join(nearest.get("differences") or [])))
    return "\n".join(lines)


# -- pytest hooks and fixtures -------------------------------------------------


def pytest_addoption(parser):
    group = parser.getgroup("rewind", "rewind record and replay")
    group.addoption("--rewind-db", metavar="PATH",
                    help="recording to replay (or record into); default $REWIND_DB")
    group.addoption("--rewind-bin", metavar="PATH",
                    help="rewind binary; default $REWIND_BIN, else rewind on PATH")
    group.addoption("--rewind-record", action="store_true",
                    help="record through rewind record instead of replaying")
    group.addoption("--rewind-backend", metavar="URL",
                    help="the backend to record from (with --rewind-record); default $REWIND_BACKEND")
    group.addoption("--rewind-arg", action="append", default=[], metavar="ARG",
                    help="one more argument for rewind (repeatable), e.g. --rewind-arg=--latency=none")
    group.addoption("--rewind-strict-near", action="store_true",
                    help="fail a test answered from the nearest recording (replay --on-miss nearest)"
                         " as a miss fails it")
    group.addoption("--rewind-require-all", action="store_true",
                    help="fail the run if a recording was never served (a stale recording)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "rewind(allow_misses=False): allow_misses=True lets the test miss the recording")
    config._rewind_unused = []
    config._rewind_near = []


@pytest.fixture(scope="session")
def rewind_server(request, tmp_path_factory):
    """The session's rewind (replay, or record with --rewind-record)."""
    opt = request.config.getoption
    db = opt("--rewind-db") or os.environ.get("REWIND_DB")
    if not db:
        pytest.fail("rewind: no recording; pass --rewind-db PATH or set REWIND_DB", pytrace=False)
    try:
        server = start(db, bin=opt("--rewind-bin"), record=opt("--rewind-record"),
                       backend=opt("--rewind-backend") or os.environ.get("REWIND_BACKEND"),
                       args=opt("--rewind-arg"), workdir=str(tmp_path_factory.mktemp("rewind")))
    except RewindError as e:
        pytest.fail("rewind: %s" % e, pytrace=False)
    yield server
    if opt("--rewind-require-all") and not server.mode == "record":
        # Asked before stopping: session fixtures end with the last test.
        try:
            request.config._rewind_unused.extend(server.unused())
        except RewindError as e:
            request.config._rewind_unused.append({"id": "?", "method": "?", "path": str(e)})
    code = server.stop()
    # Exit codes of a server that stopped cleanly; 1 is --strict's or
    # --require-all's verdict, reported by pytest_terminal_summary.
    if code not in (0, 1, -signal.SIGTERM):
        pytest.fail("rewind exited with %d:\n%s" % (code, server.log()), pytrace=False)


@pytest.fixture
def rewind_scope(request, rewind_server):
    """This test's scope, reset before the test; its misses fail the test."""
    seen = request.config.__dict__.setdefault("_rewind_scope_names", {})
    name = scope_name(request.node.name)
    if seen.setdefault(name, request.node.nodeid) != request.node.nodeid:
        name = scope_name(request.node.name + "-" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8])
        seen[name] = request.node.nodeid
    scope = Scope(rewind_server, name)
    try:
        scope.reset()
    except RewindError as e:
        pytest.fail("rewind: %s" % e, pytrace=False)
    marker = request.node.get_closest_marker("rewind")
    if not (marker and marker.kwargs.get("allow_misses")):
        request.node._rewind_scope = scope
    return scope


@pytest.fixture
def rewind_url(rewind_scope):
    """This test's base URL, ``http://127.0.0.1:PORT/__scope/NAME``."""
    return rewind_scope.url


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    scope = getattr(item, "_rewind_scope", None)
    if call.when != "call" or scope is None or hasattr(report, "wasxfail") or report.skipped:
        return
    strict_near = item.config.getoption("--rewind-strict-near")
    try:
        journal = scope.server.requests(scope.name)
        misses = [r for r in journal if r.get("outcome") == "miss"]
        near = [r for r in journal if r.get("outcome") == "near"]
        text = explain(misses) if misses else ""
    except RewindError as e:
        misses, near, text = True, [], "rewind: could not read the journal of scope %s: %s" % (scope.name, e)
    if near:
        item.config._rewind_near.append((item.nodeid, near))
        near_text = explain_near(near)
        if strict_near:
            misses = True
            text = (text + "\n" if text else "") + near_text + " (--rewind-strict-near)"
        else:
            report.sections.append(("rewind", near_text))
    if not misses:
        return
    if report.passed:
        report.outcome = "failed"
        report.longrepr = text
    else:
        report.sections.append(("rewind", text))


def pytest_sessionfinish(session, exitstatus):
    if session.config._rewind_unused and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    near = config._rewind_near
    if near:
        terminalreporter.section("rewind")
        total = sum(len(n) for _, n in near)
        terminalreporter.write_line("%d near answer%s (--on-miss nearest%s):"
                                    % (total, "" if total == 1 else "s",
                                       "; --rewind-strict-near" if config.getoption("--rewind-strict-near") else ""))
        for nodeid, entries in near:
            for line in explain_near(entries).splitlines()[1:]:
                terminalreporter.write_line("  %s:%s" % (nodeid, line[1:]))
    unused = config._rewind_unused
    if unused:
        terminalreporter.section("rewind")
        terminalreporter.write_line("%d recording%s never served (--rewind-require-all):"
                                    % (len(unused), "" if len(unused) == 1 else "s"))
        for u in unused:
            terminalreporter.write_line("  #%s %s %s" % (u.get("id"), u.get("method"), u.get("path")))
