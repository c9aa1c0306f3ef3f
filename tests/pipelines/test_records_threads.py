"""Decoding records from many threads at once, from a process's first decode on, does not crash.

msgspec builds a Struct type's decoding information lazily and another thread could read it half
built (a segfault). ``pipelines.records`` builds it at import; each subprocess here makes 8 threads
decode their first runs page at the same moment, with the GIL switching as often as it can.
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import sys, threading
sys.setswitchinterval(1e-6)
from pipelines.records import decode_list, decode_runs_page, SessionV1
item = b'{"id": "r%d", "project_id": "p", "start_time": "2024-01-01T00:00:00Z", "inputs": {"q": "x"},' \
       b' "total_cost": 0.5, "prompt_token_details": {"raw": {"audio": 1}}, "tags": ["a"]}'
page = b'{"items": [' + b",".join(item % i for i in range(2000)) + b'], "next_cursor": "c"}'
sessions = b"[" + b",".join(b'{"id": "s%d", "name": "n"}' % i for i in range(2000)) + b"]"
barrier = threading.Barrier(8)
def work(n):
    barrier.wait()
    if n % 2:
        assert len(decode_runs_page(page).items) == 2000
    else:
        assert len(decode_list(sessions, SessionV1).items) == 2000
threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print("ok")
"""


def test_first_decodes_from_many_threads_at_once() -> None:
    for _ in range(10):
        done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr[-2000:])
