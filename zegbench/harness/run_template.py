"""Run processes forked from a template process that imported the heavy libraries once.

A fresh ``python -m zegbench.harness.worker`` spends seconds of CPU importing torch, torchvision,
open_clip and scipy before its run starts, and unloading them at its end (4.5 s from start to exit
on a 2-core Xeon, against 0.6 s forked; issue 26 saw 8-10 s on a loaded machine). For CPU runs
the local executor instead starts one template per suite invocation: it imports those libraries
(``PRELOAD``), then forks a process per run. Each run is still a process of its own, and behaves as a fresh worker did:

- **Its parent is the suite.** The template forks twice and the suite is a child subreaper
  (Linux ``PR_SET_CHILD_SUBREAPER``), so the run's process is re-parented to the suite, which waits
  for it and reads its exit status as it did a subprocess's (0 done, 2 an error line, 3 claimed by
  another process, -9 killed). The process tree stays as it was: the suite's worker children are its
  runs, each run's children its loader workers. The template is the child of a keeper
  (``python -m zegbench.harness.run_template``, the suite's child), which keeps it a descendant of
  the suite (a subreaper adopts its descendants' orphans only) without making it one of the runs.
  The suite is a subreaper only while it runs a suite; an orphan it adopts then (the loader worker
  of a killed run) stays a zombie until the suite's process ends.
- **Its own environment, folder and output.** It takes the suite's environment and working folder
  as they are when it starts, and the suite's pipe (or the terminal) as its stdout and stderr.
- **zegbench is imported in the run** (0.1 s): what zegbench reads at import (``ZEGBENCH_FAULT``)
  is read there. ``PRELOAD`` lists only other libraries; a run imports whatever it lacks itself,
  so the list decides speed, never behaviour.
- **Isolation.** A crash, an exception, ``os._exit`` or ``kill -9`` ends that run's process only;
  the template holds no run state, and if it cannot start or dies the suite starts the remaining
  runs as fresh processes. It leaves when the suite closes its end of the channel (or dies), and
  it shares the suite's process group, so a signal to the group reaches it as it reaches the runs.

Why not ``multiprocessing``'s forkserver: its children are the forkserver's, inherit its stdio,
environment and ``sys.path`` (fixed when it first starts, for the life of the calling process)
rather than the suite's at each run, and it would import zegbench before the run's environment
is in place. The template never runs a torch op or touches CUDA (a forked child cannot use an
OpenMP pool or a CUDA context its parent started), and GPU runs keep fresh processes.
"""
from __future__ import annotations

import ctypes
import gc
import importlib
import json
import os
import socket
import subprocess
import sys
import threading

# What a run imports besides zegbench and the standard library (about 97% of a fresh worker's import time).
PRELOAD = ("numpy", "torch", "torchvision", "torchvision.transforms.v2", "open_clip", "scipy.optimize",
           "PIL.Image", "pydantic", "yaml", "tqdm")
_MESSAGE_BYTES = 1 << 20  # a request is the run's payload, environment and folder: a few kB
_PR_SET_CHILD_SUBREAPER, _PR_GET_CHILD_SUBREAPER = 36, 37


class TemplateUnavailable(RuntimeError):
    """The template could not be started or no longer answers: start runs as fresh processes."""


def supported() -> bool:
    """Whether runs can be forked from a template here: Linux (child subreapers, passing file descriptors)."""
    return sys.platform.startswith("linux")


class RunTemplate:
    """The suite's end: starts the template on first use, then runs one payload at a time per call.

    ``run`` may be called from several threads (``-j N``); requests to the template are serialised,
    the runs themselves are not.
    """

    def __init__(self, env: dict[str, str]):
        self.env = env  # the template's own environment (a run gets its own, see ``run``)
        self._channel: socket.socket | None = None
        self._keeper: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._was_subreaper: int | None = None

    def run(self, payload: dict, env: dict[str, str], stderr_to_terminal: bool) -> tuple[int, str]:
        """Run ``payload`` (``worker.main``'s argument) in a forked process; (exit status, its output).

        Output is its stdout and stderr together, or stdout alone when ``stderr_to_terminal`` (its
        stderr is then this process's, so a progress bar reaches the terminal): as ``subprocess.run``.
        """
        read_end, write_end = os.pipe()
        try:
            pid = self._fork(payload, env, write_end, 2 if stderr_to_terminal else write_end)
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)  # the run holds its own copy: the pipe ends when the run (and its children) do
        with open(read_end, errors="replace") as output:  # text as subprocess.run(text=True) reads it
            text = output.read()
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), text

    def close(self) -> None:
        """Let the template go (it leaves when its channel closes, and its keeper with it) and stop adopting orphans."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._keeper is not None:
            try:
                self._keeper.wait(timeout=60)
            except subprocess.TimeoutExpired:  # a template that hangs on its way out must not hold the suite
                self._keeper.kill()
                self._keeper.wait()
            self._keeper = None
        if self._was_subreaper is not None:
            _prctl(_PR_SET_CHILD_SUBREAPER, self._was_subreaper)
            self._was_subreaper = None

    def _fork(self, payload: dict, env: dict[str, str], stdout: int, stderr: int) -> int:
        request = json.dumps({"payload": json.dumps(payload), "env": env, "cwd": os.getcwd()}).encode()
        with self._lock:
            if self._channel is None:
                self._start()
            try:
                socket.send_fds(self._channel, [request], [stdout, stderr])
                reply = _receive(self._channel)
            except OSError as err:
                reply = {"error": f"the template process stopped answering ({err})"}
            if "pid" not in reply:
                self._stop()
                raise TemplateUnavailable(reply.get("error", "the template process ended"))
        return reply["pid"]

    def _start(self) -> None:
        """Become a child subreaper (the runs the template forks are re-parented here), start the
        template under its keeper, and wait until it has imported ``PRELOAD``."""
        was = _prctl_get(_PR_GET_CHILD_SUBREAPER)
        if was is None or not _prctl(_PR_SET_CHILD_SUBREAPER, 1):
            raise TemplateUnavailable("this process cannot adopt the runs (prctl PR_SET_CHILD_SUBREAPER failed)")
        self._was_subreaper = was
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            keeper = [sys.executable, "-m", "zegbench.harness.run_template", str(theirs.fileno())]
            self._keeper = subprocess.Popen(keeper, pass_fds=[theirs.fileno()], env=self.env, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            theirs.close()  # the template holds the only copy now: the channel ends when it does
            ready = _receive(ours)
        except OSError as err:
            ready = {"error": f"the template process did not start ({err})"}
        finally:
            theirs.close()
        self._channel = ours
        if not ready.get("ready"):
            self._stop()
            raise TemplateUnavailable(ready.get("error", "the template process ended while importing"))


def _receive(channel: socket.socket) -> dict:
    """One JSON message from ``channel``; ``{}`` when the other end has gone."""
    message = channel.recv(_MESSAGE_BYTES)
    return json.loads(message) if message else {}


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int) -> bool:
    return _libc().prctl(option, ctypes.c_ulong(value), 0, 0, 0) == 0


def _prctl_get(option: int) -> int | None:
    value = ctypes.c_int(0)
    return value.value if _libc().prctl(option, ctypes.byref(value), 0, 0, 0) == 0 else None


# ---- the keeper and the template: ``python -m zegbench.harness.run_template FD`` starts
# ``python -m zegbench.harness.worker --template FD`` and waits for it ----

def keep(channel_fd: int) -> int:
    """The keeper: run the template as a child and end with it (the template's exit status)."""
    template = [sys.executable, "-m", "zegbench.harness.worker", "--template", str(channel_fd)]
    try:
        return subprocess.run(template, pass_fds=[channel_fd]).returncode
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the template leaves too
        return 130


def serve(channel_fd: int) -> int:
    """The template: import ``PRELOAD``, then fork a run for each request until the suite closes the
    channel. Returns the template's exit status, or, in a run's process, the run's."""
    channel = socket.socket(fileno=channel_fd)
    try:
        for name in PRELOAD:
            importlib.import_module(name)
        if threading.active_count() > 1:  # forking a process with Python threads could copy a held lock
            raise RuntimeError(f"importing {', '.join(PRELOAD)} started Python threads")
        # The imported objects out of the collector's sight (Python's advice for forking servers): a run's
        # collections and its exit then leave the template's pages shared, 0.9 s less CPU a run here.
        gc.freeze()
    except Exception as err:  # the suite starts fresh processes instead, and says why
        channel.send(json.dumps({"error": f"the template could not import its libraries: {err}"}).encode())
        return 1
    channel.send(b'{"ready": true}')
    while True:
        try:
            message, fds, flags, _ = socket.recv_fds(channel, _MESSAGE_BYTES, 2)
        except (OSError, KeyboardInterrupt):
            message = b""
        if not message:  # the suite closed the channel, or ended. Nothing to flush or close: leave at once
            os._exit(0)  # rather than spend a second unloading torch while the suite waits for the keeper
        if flags & socket.MSG_TRUNC or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            channel.send(json.dumps({"error": "the template received a malformed request"}).encode())
            continue
        try:
            pid = _fork_detached()
        except OSError as err:
            pid = None
            channel.send(json.dumps({"error": f"the template could not fork a run: {err}"}).encode())
        if pid == 0:  # the run's process: what follows is its whole life
            channel.close()
            return _become_run(json.loads(message), *fds)
        for fd in fds:
            os.close(fd)
        if pid is not None:
            channel.send(json.dumps({"pid": pid}).encode())


def _fork_detached() -> int:
    """Fork a process whose parent leaves at once (so it is re-parented to the subreaper, the suite):
    its pid here, 0 in it."""
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(read_end)
        try:
            run = os.fork()
        except OSError:
            os._exit(1)
        if run == 0:
            os.close(write_end)
            return 0
        os.write(write_end, str(run).encode())
        os._exit(0)
    os.close(write_end)
    with open(read_end, "rb") as pipe:
        told = pipe.read()
    os.waitpid(middle, 0)  # once it has ended, the run's parent is the suite
    if not told:
        raise OSError("the run's process could not be forked")
    return int(told)


def _become_run(request: dict, stdout: int, stderr: int) -> int:
    """In the forked process: take the run's output, folder and environment, then run it as ``worker.main``."""
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    for fd in {stdout, stderr} - {1, 2}:
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [sys.argv[0], request["payload"]]
    from zegbench.harness.worker import main

    return main([request["payload"]])


if __name__ == "__main__":
    sys.exit(keep(int(sys.argv[1])))
