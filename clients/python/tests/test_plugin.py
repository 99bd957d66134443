"""The pytest plugin against the real rewind: record a suite, replay it, a
miss fails its test with rewind's explanation, scopes keep tests apart."""
import json
import re
import subprocess

import rewind_pytest

TWO_TESTS = """
from helpers import chat, answer

def test_capital(rewind_url):
    status, headers, body = chat(rewind_url, "The capital of France?")
    assert status == 200, body
    print("X-Rewind:", headers.get("X-Rewind"), "answer:", answer(body))

def test_colour(rewind_url):
    status, headers, body = chat(rewind_url, "A colour?")
    assert status == 200, body
    print("X-Rewind:", headers.get("X-Rewind"), "answer:", answer(body))
"""


def ls(bin, db):
    out = subprocess.run([bin, "ls", "--db", str(db), "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def record(suite, backend, db, **files):
    url = backend("--seed", "7")
    return suite("--rewind-record", "--rewind-backend", url, "--rewind-db", str(db), "-s", **files)


def test_records_then_replays_with_the_backend_gone(suite, backend, tmp_path, rewind_bin):
    db = tmp_path / "rec.sqlite"
    result = record(suite, backend, db, test_two=TWO_TESTS)
    result.assert_outcomes(passed=2)
    rows = ls(rewind_bin, db)
    assert len(rows) == 2
    # The scope prefix is not part of what was recorded.
    assert all(r["path"] == "/v1/chat/completions" for r in rows), rows

    result = suite("--rewind-db", str(db), "-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*X-Rewind: hit answer: The capital of France?*",
                                 "*X-Rewind: hit answer: A colour?*"])


def test_rewind_db_from_the_environment(suite, backend, tmp_path, monkeypatch):
    db = tmp_path / "rec.sqlite"
    record(suite, backend, db, test_two=TWO_TESTS).assert_outcomes(passed=2)
    monkeypatch.setenv("REWIND_DB", str(db))
    suite().assert_outcomes(passed=2)


def test_a_miss_fails_the_test_with_rewinds_explanation(suite, backend, tmp_path):
    db = tmp_path / "rec.sqlite"
    record(suite, backend, db, test_two=TWO_TESTS).assert_outcomes(passed=2)
    # The test itself accepts any answer: only the plugin can fail it.
    changed = """
from helpers import chat

def test_capital(rewind_url):
    chat(rewind_url, "The capital of Italy?")

def test_colour(rewind_url):
    chat(rewind_url, "A colour?")
"""
    result = suite("--rewind-db", str(db), test_two=changed)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*_ test_capital _*",
        "rewind: 1 request missed the recording:",
        "  POST /v1/chat/completions: no recorded response for POST /v1/chat/completions (key *);"
        " nearest recording is #?, which differs in: messages[[]1[]].content;"
        ' messages[[]1[]].content: recorded "*" sent "The capital of Italy?"',
        "FAILED test_two.py::test_capital*",
    ])
    assert "test_colour" not in "".join(l for l in result.outlines if "FAILED" in l)


def test_a_failing_test_that_missed_shows_the_explanation_too(suite, backend, tmp_path):
    db = tmp_path / "rec.sqlite"
    record(suite, backend, db, test_two=TWO_TESTS).assert_outcomes(passed=2)
    failing = """
from helpers import chat

def test_capital(rewind_url):
    status, _, _ = chat(rewind_url, "The capital of Spain?")
    assert status == 200
"""
    result = suite("--rewind-db", str(db), test_two=failing)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert 404 == 200*", "*- rewind -*",
                                 "*differs in: messages[[]1[]].content*"])


def test_near_answers_are_reported_and_fail_with_strict_near(suite, backend, tmp_path):
    db = tmp_path / "rec.sqlite"
    record(suite, backend, db, test_two=TWO_TESTS).assert_outcomes(passed=2)
    changed = """
from helpers import chat

def test_capital(rewind_url):
    status, headers, _ = chat(rewind_url, "The capital of Italy?")
    assert status == 200 and headers.get("X-Rewind") == "near"
"""
    nearest = ("--rewind-arg=--on-miss", "--rewind-arg=nearest")
    result = suite("--rewind-db", str(db), *nearest, test_two=changed)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*= rewind =*",
        "1 near answer (--on-miss nearest):",
        "  *test_two.py::test_capital: POST /v1/chat/completions: answered from #?,"
        " which differs in: messages[[]1[]].content",
    ])
    strict = suite("--rewind-db", str(db), *nearest, "--rewind-strict-near", test_two=changed)
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines([
        "rewind: 1 near answer:",
        "  POST /v1/chat/completions: answered from #?, which differs in: messages[[]1[]].content"
        " (--rewind-strict-near)",
        "FAILED test_two.py::test_capital*",
    ])


def test_allow_misses_marker(suite, backend, tmp_path):
    db = tmp_path / "rec.sqlite"
    record(suite, backend, db, test_two=TWO_TESTS).assert_outcomes(passed=2)
    expected = """
import pytest
from helpers import chat

@pytest.mark.rewind(allow_misses=True)
def test_unrecorded_prompt_is_a_404(rewind_scope):
    status, _, body = chat(rewind_scope.url, "never recorded")
    assert status == 404
    assert [m["outcome"] for m in rewind_scope.requests()] == ["miss"]
    assert "differs in" in rewind_scope.misses()[0]["explanation"]
"""
    suite("--rewind-db", str(db), test_two=expected).assert_outcomes(passed=1)


def test_each_test_has_its_own_repeat_counters(suite, backend, tmp_path):
    # Recorded: the same request twice, two different answers.
    db = tmp_path / "rec.sqlite"
    twice = """
from helpers import chat, answer

def test_twice(rewind_url):
    first, second = answer(chat(rewind_url, "hi")[2]), answer(chat(rewind_url, "hi")[2])
    assert first != second
    print("recorded:", first, "|", second)
"""
    url = backend("--seed", "7", "--output", "random")
    result = suite("--rewind-record", "--rewind-backend", url, "--rewind-db", str(db), "-s",
                   test_rec=twice)
    result.assert_outcomes(passed=1)
    first = re.search(r"recorded: (.*) \| ", result.stdout.str()).group(1)
    # Three tests each send it once: each gets the first recording, as if
    # alone; without scopes the second and third would get the second.
    three = """
import pytest
from helpers import chat, answer

@pytest.mark.parametrize("n", [1, 2, 3])
def test_once(rewind_url, n):
    print("answer %d: %s" % (n, answer(chat(rewind_url, "hi")[2])))
"""
    result = suite("--rewind-db", str(db), "-s", "test_three.py", test_three=three)
    result.assert_outcomes(passed=3)
    answers = re.findall(r"answer \d: (.*?)\n", result.stdout.str())
    assert answers == [first] * 3, (answers, first)


def test_scope_per_test_named_after_it(suite, backend, tmp_path):
    db = tmp_path / "rec.sqlite"
    record(suite, backend, db, test_two=TWO_TESTS).assert_outcomes(passed=2)
    names = """
import pytest
from helpers import chat

@pytest.mark.parametrize("q", ["The capital of France?", "A colour?"])
def test_q(rewind_scope, rewind_server, q):
    assert rewind_scope.name.startswith("test_q_")
    assert rewind_scope.url == rewind_server.url + "/__scope/" + rewind_scope.name
    chat(rewind_scope.url, q)
    journal = rewind_scope.requests()
    assert [(r["scope"], r["path"], r["outcome"]) for r in journal] == \\
        [(rewind_scope.name, "/v1/chat/completions", "hit")]
    print("scope", rewind_scope.name)
"""
    result = suite("--rewind-db", str(db), "-s", test_two=names)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*scope test_q_The_capital_of_France__*", "*scope test_q_A_colour__*"])


def test_require_all_names_recordings_never_served(suite, backend, tmp_path):
    db = tmp_path / "rec.sqlite"
    record(suite, backend, db, test_two=TWO_TESTS).assert_outcomes(passed=2)
    result = suite("--rewind-db", str(db), "--rewind-require-all", "-k", "capital")
    result.assert_outcomes(passed=1, deselected=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*1 recording never served (--rewind-require-all):*",
                                 "*#2 POST /v1/chat/completions*"])
    result = suite("--rewind-db", str(db), "--rewind-require-all")
    assert result.ret == 0


def test_no_recording_named(suite, tmp_path):
    result = suite(test_one="def test_x(rewind_url):\n    pass\n")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*rewind: no recording; pass --rewind-db PATH or set REWIND_DB*"])


def test_rewind_that_cannot_start_says_why(suite, tmp_path):
    missing = tmp_path / "nope" / "none.sqlite"
    result = suite("--rewind-db", str(missing), test_one="def test_x(rewind_url):\n    pass\n")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*replay --db*exited with 2 before listening:*"])


def test_no_binary(suite, tmp_path, monkeypatch):
    monkeypatch.setenv("REWIND_BIN", str(tmp_path / "absent"))
    result = suite("--rewind-db", str(tmp_path / "x.sqlite"),
                   test_one="def test_x(rewind_url):\n    pass\n")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*rewind binary *absent is not executable*"])


def test_scope_names():
    assert rewind_pytest.scope_name("test_a[x/y z]") == "test_a_x_y_z_"
    assert rewind_pytest.scope_name("ok-1.2_~") == "ok-1.2_~"
    long_a, long_b = "t" * 200 + "a", "t" * 200 + "b"
    assert len(rewind_pytest.scope_name(long_a)) == 128
    assert rewind_pytest.scope_name(long_a) != rewind_pytest.scope_name(long_b)
