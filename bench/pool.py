"""The parent's side of the generator processes: start them pinned, send phases, gather answers.

Why a pipe per process and explicit phases: the parent lines the workers up (everybody connected
before the login storm starts, everybody logged in before the window opens) and samples the
server's /proc figures between phases, so each figure covers exactly one kind of load.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.connection import Connection, wait
from typing import Any

from .worker import worker_main


class GeneratorError(RuntimeError):
    """A generator failed a phase (its traceback is the message) or did not answer in time."""


class Generators:
    """``count`` generator processes; generator i is pinned to ``cpus[i % len(cpus)]`` (None: unpinned).

    ``lifetime`` bounds each process: its own watchdog ends it then, whatever the parent does.
    """

    def __init__(self, count: int, cpus: list[int] | None, lifetime: float) -> None:
        try:
            ctx = multiprocessing.get_context("fork")
        except ValueError:  # no fork on this platform
            ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[Any] = []
        self.cpus = cpus
        try:
            for i in range(count):
                parent_end, child_end = ctx.Pipe()
                pinned = [cpus[i % len(cpus)]] if cpus else None
                process = ctx.Process(
                    target=worker_main,
                    args=(child_end, i, pinned, lifetime),
                    name=f"coffeechat-bench-generator-{i}",
                    daemon=True,
                )
                process.start()
                child_end.close()
                self.pipes.append(parent_end)
                self.processes.append(process)
        except BaseException:
            self.close()
            raise

    def __len__(self) -> int:
        return len(self.pipes)

    def send(self, name: str, per_worker: list[dict[str, Any]]) -> None:
        """Start phase ``name`` on every generator, each with its own keyword arguments."""
        for pipe, kwargs in zip(self.pipes, per_worker, strict=True):
            pipe.send((name, kwargs))

    def gather(self, timeout: float) -> list[Any]:
        """Each generator's answer to the running phase, in generator order."""
        results: list[Any] = [None] * len(self.pipes)
        waiting = {pipe: i for i, pipe in enumerate(self.pipes)}
        deadline = time.monotonic() + timeout
        while waiting:
            left = deadline - time.monotonic()
            ready = wait(list(waiting), timeout=max(0.0, left)) if left > 0 else []
            if not ready:
                raise GeneratorError(f"{len(waiting)} generator(s) did not answer within {timeout:.0f}s")
            for pipe in ready:
                i = waiting.pop(pipe)  # type: ignore[call-overload]
                try:
                    status, value = pipe.recv()  # type: ignore[union-attr]
                except EOFError:
                    raise GeneratorError(f"generator {i} died (exit code {self.processes[i].exitcode})") from None
                if status != "ok":
                    raise GeneratorError(value)
                results[i] = value
        return results

    def call(self, name: str, per_worker: list[dict[str, Any]], timeout: float) -> list[Any]:
        self.send(name, per_worker)
        return self.gather(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Ask every generator to close its connections and exit; kill the ones that do not."""
        for pipe in self.pipes:
            try:
                pipe.send(("exit", {}))
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + timeout
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1)
        for pipe in self.pipes:
            pipe.close()
        self.pipes = []
        self.processes = []

    def __enter__(self) -> Generators:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def split(items: list[Any], parts: int) -> list[list[Any]]:
    """``items`` dealt into ``parts`` contiguous slices of nearly equal size."""
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out
