# Record once: pytest test_dated_prompt.py --rewind-db dated.sqlite --rewind-record --rewind-backend URL --rewind-arg=--normalize=date
# Replay, any day after, offline: pytest test_dated_prompt.py --rewind-db dated.sqlite
import datetime, json, os, urllib.request
import pytest

def ask(base, question):  # the system prompt is stamped with the current date and time
    system = f"{os.environ.get('PERSONA', 'You are terse.')} Now is {datetime.datetime.now().isoformat()}."
    body = {"model": "m", "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}]}
    req = urllib.request.Request(base + "/v1/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))["choices"][0]["message"]["content"]

@pytest.mark.parametrize("question", ["What is 2+2?", "Name a colour.", "Say hi."])
def test_answers(rewind_url, question):  # each test in its own scope: /__scope/test_answers_What_is_2_2__
    assert ask(rewind_url, question)
