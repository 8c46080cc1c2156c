"""WorkerProcess's account of a worker that failed: the cause, not only the log's tail."""
from streamkit.worker_process import WorkerProcess


def test_the_error_that_stopped_the_worker_is_shown_though_the_shutdown_logged_past_it(tmp_path):
    log = tmp_path / "w.log"
    shutdown = "".join(f"[INFO] stopping part {i}\n" for i in range(500))
    log.write_text("[INFO] starting\n[ERROR] coordinator not available (retried)\n"
                   "[ERROR] could not create topic t: boom\n"
                   "Traceback (most recent call last):\n  ValueError: boom\n"
                   "[2026] [1] [INFO] [^Worker]: Stopping... \n" + shutdown +
                   "[ERROR] a part failed to stop\n")
    w = WorkerProcess("apps.x", {"STREAMKIT_WEB_PORT": "1"}, log)
    assert "could not create topic t: boom" not in w.log_tail()
    cause = w.stop_cause(200)
    assert cause.startswith("[ERROR] could not create topic t: boom\nTraceback")
    assert len(cause) <= 200 + len("\n...\n")


def test_a_log_without_an_error_adds_nothing(tmp_path):
    log = tmp_path / "w.log"
    log.write_text("[INFO] starting\n[WARNING] slow\n")
    assert WorkerProcess("apps.x", {"STREAMKIT_WEB_PORT": "1"}, log).stop_cause() == ""
