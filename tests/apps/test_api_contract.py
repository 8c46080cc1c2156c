"""The HTTP API against its OpenAPI document: schemathesis, run against a live deployment
(the gateway and a service worker), finds no 500 and no answer that breaks the document."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from streamkit.worker_process import WorkerProcess

CONFIG = Path(__file__).with_name("schemathesis.toml")


def schemathesis(url: str, examples: int) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("schemathesis")
    return subprocess.run(
        [str(exe), "--config-file", str(CONFIG), "run", f"{url}/openapi.json",
         "-n", str(examples), "--request-timeout", "10", "--generation-deterministic",
         "-c", "not_a_server_error,status_code_conformance,content_type_conformance,"
               "response_schema_conformance,response_headers_conformance"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "NO_COLOR": "1"})


def test_gateway_and_worker_answers_conform_to_their_openapi_documents(start_system):
    # Short deadlines: a wait or a gateway request that cannot finish answers 504 quickly.
    s = start_system(1, STREAMKIT_GATEWAY_TIMEOUT_MS="1500", STREAMKIT_MAX_WAIT_MS="1500")
    assert s.call("POST", "/api/customer", {"name": "Cy", "email": "cy@example.org"})[0] == 201
    worker = next(w for w in s.workers if isinstance(w, WorkerProcess) and "orders" in w.module)
    for url, examples in ((s.gateway.url, 15), (worker.url, 25)):
        run = schemathesis(url, examples)
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        assert " passed" in run.stdout
