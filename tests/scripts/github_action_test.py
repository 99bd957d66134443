#!/usr/bin/env python3
"""The GitHub Actions example (.github/workflows/example-replay.yml) and the
rewind-replay action it uses, run here without a GitHub runner: the YAML is
parsed and its steps executed in order as a runner would (composite actions
expanded with their inputs, ${{ }} expressions and `if:` conditions
evaluated, GITHUB_ENV, GITHUB_PATH and GITHUB_OUTPUT carried from step to
step), against the real binary and the bundled sample recording.

  github_action_test.py SOURCE_DIR BUILD_DIR

Checks: the action builds (a no-op in BUILD_DIR, already built) and installs
rewind on PATH, exports the replay's URL, the example's tests pass and the
stop step passes; a request that was not recorded makes the stop step (and
so the job) fail with rewind's explanation; with require-all, recordings
never served fail it too; a recording that does not exist fails the start.
"""
import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

SOURCE, BUILD = (os.path.abspath(p) for p in sys.argv[1:3])
WORKFLOW = os.path.join(SOURCE, ".github/workflows/example-replay.yml")
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


class Unsupported(Exception):
    pass


# -- expressions ---------------------------------------------------------------

TOKEN = re.compile(r"\s*(?:(\(|\)|&&|\|\||==|!=|!)|'((?:[^']|'')*)'|([A-Za-z_][\w.-]*(?:\(\))?))")


def evaluate(expr, ctx):
    """A GitHub expression of the kinds the action and workflow use:
    contexts (inputs.x, steps.id.outputs.x, env.X, github.action_path,
    runner.temp), 'strings', ==, !=, !, &&, ||, parentheses, always(),
    success(), failure(). Anything else raises Unsupported."""
    tokens, pos = [], 0
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            if expr[pos:].strip() == "":
                break
            raise Unsupported("expression %r at %r" % (expr, expr[pos:]))
        pos = m.end()
        if m.group(1):
            tokens.append(("op", m.group(1)))
        elif m.group(2) is not None:
            tokens.append(("str", m.group(2).replace("''", "'")))
        else:
            tokens.append(("name", m.group(3)))
    tokens.append(("end", None))
    i = 0

    def peek():
        return tokens[i]

    def take():
        nonlocal i
        i += 1
        return tokens[i - 1]

    def primary():
        kind, value = take()
        if kind == "op" and value == "(":
            v = disjunction()
            if take() != ("op", ")"):
                raise Unsupported(expr)
            return v
        if kind == "op" and value == "!":
            return not truthy(primary())
        if kind == "str":
            return value
        if kind == "name":
            return lookup(value, ctx)
        raise Unsupported(expr)

    def comparison():
        left = primary()
        while peek()[0] == "op" and peek()[1] in ("==", "!="):
            op = take()[1]
            right = primary()
            left = (str(left) == str(right)) if op == "==" else (str(left) != str(right))
        return left

    def conjunction():
        v = comparison()
        while peek() == ("op", "&&"):
            take()
            right = comparison()
            v = truthy(v) and truthy(right)
        return v

    def disjunction():
        v = conjunction()
        while peek() == ("op", "||"):
            take()
            right = conjunction()
            v = truthy(v) or truthy(right)
        return v

    result = disjunction()
    if peek()[0] != "end":
        raise Unsupported(expr)
    return result


def truthy(v):
    return v not in (False, None, "", 0, "false") if not isinstance(v, bool) else v


def lookup(name, ctx):
    if name == "always()":
        return True
    if name == "success()":
        return not ctx["failed"]
    if name == "failure()":
        return ctx["failed"]
    if name.endswith("()"):
        raise Unsupported(name)
    parts = name.split(".")
    if parts[0] == "inputs" and len(parts) == 2:
        if parts[1] not in ctx["inputs"]:
            raise Unsupported("unknown input %s" % parts[1])
        return ctx["inputs"][parts[1]]
    if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs":
        return ctx["steps"].get(parts[1], {}).get(parts[3], "")
    if parts[0] == "env" and len(parts) == 2:
        return ctx["env"].get(parts[1], "")
    if name == "github.action_path":
        return ctx["action_path"]
    if name == "github.workspace":
        return SOURCE
    if name == "runner.temp":
        return ctx["env"]["RUNNER_TEMP"]
    raise Unsupported("context %s" % name)


def substitute(text, ctx):
    if not isinstance(text, str):
        return "" if text is None else str(text).lower() if isinstance(text, bool) else str(text)
    return EXPR.sub(lambda m: str(evaluate(m.group(1), ctx)), text)


def condition(text, ctx):
    if text is None:
        return not ctx["failed"]
    text = str(text).strip()
    m = re.fullmatch(r"\$\{\{(.*)\}\}", text, re.S)
    return truthy(evaluate(m.group(1) if m else text, ctx))


# -- the runner ----------------------------------------------------------------


def read_file_commands(path):
    """NAME=value lines and NAME<<DELIM heredocs, as GITHUB_ENV and
    GITHUB_OUTPUT hold them."""
    out = {}
    with open(path) as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        m = re.match(r"^([^=<]+)<<(.+)$", line)
        if m:
            value = []
            while lines[i] != m.group(2):
                value.append(lines[i])
                i += 1
            i += 1
            out[m.group(1)] = "\n".join(value)
        else:
            name, _, value = line.partition("=")
            out[name] = value
    return out


class Job:
    def __init__(self, temp):
        self.temp = temp
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
        self.env.update(RUNNER_TEMP=os.path.join(temp, "runner"), GITHUB_WORKSPACE=SOURCE,
                        CI="true", GITHUB_ACTIONS="true",
                        GITHUB_STEP_SUMMARY=os.path.join(temp, "summary.md"))
        os.makedirs(self.env["RUNNER_TEMP"])
        self.paths = []
        self.log = []  # (name, status, output)
        self.count = 0

    def run_shell(self, name, script, shell, step_env, action_path):
        self.count += 1
        files = {k: os.path.join(self.temp, "%s.%d" % (k, self.count)) for k in ("env", "path", "output", "script")}
        for p in files.values():
            open(p, "w").close()
        with open(files["script"], "w") as f:
            f.write(script)
        env = dict(self.env)
        env.update(step_env)
        env["PATH"] = os.pathsep.join(list(reversed(self.paths)) + [self.env["PATH"]])
        env.update(GITHUB_ENV=files["env"], GITHUB_PATH=files["path"], GITHUB_OUTPUT=files["output"])
        if action_path:
            env["GITHUB_ACTION_PATH"] = action_path
        if shell not in (None, "bash"):
            raise Unsupported("shell %s" % shell)
        argv = ["bash", "--noprofile", "--norc", "-eo", "pipefail", files["script"]]
        p = subprocess.run(argv, cwd=SOURCE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=900)
        self.env.update(read_file_commands(files["env"]))
        with open(files["path"]) as f:
            self.paths += [l for l in f.read().split("\n") if l]
        status = "success" if p.returncode == 0 else "failure"
        self.log.append((name, status, p.stdout))
        print("---- step: %s (%s)\n%s" % (name, status, p.stdout.rstrip()), flush=True)
        return p.returncode == 0, read_file_commands(files["output"])

    def run_steps(self, steps, ctx):
        """Runs steps as a job (or a composite action) does; returns whether
        all succeeded."""
        for i, step in enumerate(steps):
            name = step.get("name") or step.get("uses") or "run %d" % (i + 1)
            if not condition(step.get("if"), ctx):
                self.log.append((name, "skipped", ""))
                print("---- step: %s (skipped)" % name, flush=True)
                continue
            step_env = {k: substitute(v, ctx) for k, v in (step.get("env") or {}).items()}
            if "run" in step:
                ok, outputs = self.run_shell(name, substitute(step["run"], ctx), step.get("shell"),
                                             step_env, ctx["action_path"])
            elif step["uses"].startswith("actions/checkout@"):
                self.log.append((name, "skipped", "the source tree is the checkout"))
                ok, outputs = True, {}
            elif step["uses"].startswith("./"):
                ok, outputs = self.run_action(os.path.join(SOURCE, step["uses"][2:]),
                                              {k: substitute(v, ctx) for k, v in (step.get("with") or {}).items()})
            else:
                raise Unsupported("uses: %s" % step["uses"])
            if "id" in step:
                ctx["steps"][step["id"]] = outputs
            if not ok:
                ctx["failed"] = True
        return not ctx["failed"]

    def run_action(self, path, given):
        with open(os.path.join(path, "action.yml")) as f:
            action = yaml.safe_load(f)
        assert action["runs"]["using"] == "composite", action["runs"]
        declared = action.get("inputs") or {}
        unknown = set(given) - set(declared)
        assert not unknown, "inputs the action does not declare: %s" % unknown
        inputs = {}
        for name, spec in declared.items():
            if name in given:
                inputs[name] = given[name]
            elif spec.get("required"):
                raise AssertionError("required input %s not given" % name)
            else:
                inputs[name] = substitute(spec.get("default", ""), {})
        ctx = {"inputs": inputs, "steps": {}, "env": self.env, "failed": False, "action_path": path}
        for step in action["runs"]["steps"]:
            assert "run" not in step or step.get("shell"), "a composite run step needs shell: %s" % step
        ok = self.run_steps(action["runs"]["steps"], ctx)
        outputs = {k: substitute(v["value"], ctx) for k, v in (action.get("outputs") or {}).items()}
        return ok, outputs


def run_workflow(workflow, name):
    print("==== %s" % name, flush=True)
    temp = tempfile.mkdtemp(prefix="rewind-action-test-")
    job = Job(temp)
    (job_spec,) = workflow["jobs"].values()
    ctx = {"inputs": {}, "steps": {}, "env": job.env, "failed": False, "action_path": None}
    ok = job.run_steps(job_spec["steps"], ctx)
    return ok, job, ctx, temp


def load():
    with open(WORKFLOW) as f:
        return yaml.safe_load(f)


def action_step(workflow):
    steps = workflow["jobs"]["replay"]["steps"]
    (step,) = [s for s in steps if s.get("uses") == "./.github/actions/rewind-replay"]
    return step


def insert_before_stop(workflow, step):
    steps = workflow["jobs"]["replay"]["steps"]
    (stop,) = [i for i, s in enumerate(steps) if s.get("uses") == "./.github/actions/rewind-replay/stop"]
    steps.insert(stop, step)


def output_of(job, name):
    outs = [o for n, s, o in job.log if n == name]
    assert outs, "no step %r ran: %s" % (name, [(n, s) for n, s, _ in job.log])
    return outs[-1]


def status_of(job, name):
    return [s for n, s, _ in job.log if n == name][-1]


failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)


STOP = "Stop rewind replay; fail on misses"
MISS = {
    "name": "A request that was not recorded",
    "run": "code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' "
           "-d '{\"model\":\"demo-model\",\"messages\":[{\"role\":\"user\",\"content\":\"never recorded\"}]}' "
           "\"$OPENAI_BASE_URL/chat/completions\")\n"
           "echo \"HTTP $code\"\ntest \"$code\" = 404\n",
}


def main():
    base = load()
    # Every run step, the action's and the workflow's, is valid bash.
    for path in [WORKFLOW] + [os.path.join(SOURCE, ".github/actions", d, "action.yml")
                              for d in ("rewind-replay", "rewind-replay/stop")]:
        with open(path) as f:
            doc = yaml.safe_load(f)
        steps = doc["runs"]["steps"] if "runs" in doc else doc["jobs"]["replay"]["steps"]
        for s in steps:
            if "run" in s:
                p = subprocess.run(["bash", "-n"], input=EXPR.sub("x", s["run"]), text=True, capture_output=True)
                check(p.returncode == 0, "bash -n accepts %s: %s" % (os.path.relpath(path, SOURCE), s.get("name")))
    p = subprocess.run(["bash", "-n", os.path.join(SOURCE, ".github/actions/rewind-replay/replay.sh")])
    check(p.returncode == 0, "bash -n accepts replay.sh")

    # 1. The example as it is, but built in BUILD_DIR (already built).
    wf = copy.deepcopy(base)
    action_step(wf)["with"]["build-dir"] = BUILD
    ok, job, ctx, temp = run_workflow(wf, "the example workflow")
    check(ok, "the example workflow succeeds")
    url = ctx["steps"].get("rewind", {}).get("url", "")
    check(re.fullmatch(r"http://127\.0\.0\.1:\d+", url) is not None, "the action's url output: %r" % url)
    check(job.env.get("REWIND_URL") == url, "REWIND_URL exported: %r" % job.env.get("REWIND_URL"))
    check(job.env.get("OPENAI_BASE_URL") == url + "/v1", "OPENAI_BASE_URL exported: %r" % job.env.get("OPENAI_BASE_URL"))
    installed = os.path.join(job.env["RUNNER_TEMP"], "rewind", "bin")
    check(job.paths == [installed] and os.path.isfile(os.path.join(installed, "rewind")),
          "rewind installed and put on PATH: %s" % job.paths)
    check(status_of(job, "Build and install rewind") == "success", "the build step ran")
    check(status_of(job, "Install rewind's Debian package") == "skipped", "the package step did not")
    tests = output_of(job, "Run the tests against it")
    check("replay at %s; OPENAI_BASE_URL=%s/v1" % (url, url) in tests, "the tests step sees the URL")
    check("3 passed, 0 changed, 0 failed to answer" in tests, "rewind check passed against the replay")
    stop = output_of(job, STOP)
    check(status_of(job, STOP) == "success", "the stop step passes")
    check("rewind: 3 requests, 3 hits, 0 misses, 0 unused recordings" in stop, "the verdict is printed: %r" % stop)
    with open(job.env["GITHUB_STEP_SUMMARY"]) as f:
        check("### rewind replay" in f.read(), "the verdict is in the job summary")
    shutil.rmtree(temp)

    # 2. A request that was not recorded: the stop step fails the job.
    wf = copy.deepcopy(base)
    action_step(wf)["with"].update({"install": "none", "bin": os.path.join(BUILD, "rewind")})
    insert_before_stop(wf, MISS)
    ok, job, ctx, temp = run_workflow(wf, "the example with a request that was not recorded")
    check(not ok, "the job fails")
    check(status_of(job, "Build and install rewind") == "skipped", "install none: nothing built")
    check(status_of(job, "Run the tests against it") == "success", "the tests themselves passed")
    check("HTTP 404" in output_of(job, MISS["name"]), "the unrecorded request got a 404")
    stop = output_of(job, STOP)
    check(status_of(job, STOP) == "failure", "the stop step fails")
    # The verdict names each miss as the log does (no query string).
    check("rewind: miss (request 4): POST /v1/chat/completions (key " in stop
          and "differs in: messages[0].content" in stop and "rewind: failed: 1 miss (--strict)" in stop,
          "the stop step shows rewind's explanation: %r" % stop)
    check("rewind: 4 requests, 3 hits, 1 miss" in stop, "and the verdict")
    shutil.rmtree(temp)

    # 3. require-all: recordings never served fail the job.
    wf = copy.deepcopy(base)
    action_step(wf)["with"].update({"install": "none", "bin": os.path.join(BUILD, "rewind"), "require-all": "true"})
    steps = wf["jobs"]["replay"]["steps"]
    tests = [s for s in steps if s.get("name") == "Run the tests against it"][0]
    tests["run"] = tests["run"].replace("--target", "--id 1 --target")
    ok, job, ctx, temp = run_workflow(wf, "require-all, one recording of three served")
    check(not ok, "the job fails")
    stop = output_of(job, STOP)
    check(status_of(job, STOP) == "failure" and "2 unused recordings" in stop, "unused recordings fail it: %r" % stop)
    shutil.rmtree(temp)

    # 4. A recording that does not exist: the start step fails and says so;
    #    the stop step, run always, says nothing was started.
    wf = copy.deepcopy(base)
    action_step(wf)["with"].update({"install": "none", "bin": os.path.join(BUILD, "rewind"),
                                    "recording": "recordings/absent.sqlite"})
    ok, job, ctx, temp = run_workflow(wf, "a recording that does not exist")
    check(not ok and status_of(job, "Start rewind replay") == "failure", "the start step fails")
    check("no recording at recordings/absent.sqlite" in output_of(job, "Start rewind replay"), "and says why")
    check(status_of(job, "Run the tests against it") == "skipped", "the tests are skipped")
    check("no replay was started" in output_of(job, STOP), "the stop step says nothing was started")
    shutil.rmtree(temp)

    if failures:
        print("%d check(s) failed:\n  %s" % (len(failures), "\n  ".join(failures)))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
