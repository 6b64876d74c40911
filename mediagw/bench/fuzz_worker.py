"""One fuzz target in a child process.

``python -m mediagw.bench.fuzz_worker NAME N SEED ENGINE OUT``

Writes its TargetReport as JSON to OUT (also while it runs, so a crash leaves the counts).
With ENGINE ``atheris``, libFuzzer drives coverage-guided mutation from the target's seeds.
"""

from __future__ import annotations

import faulthandler
import importlib
import inspect
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .fuzz import HANG_SECONDS, Runner, TargetReport, run_mutations, save
from .fuzz_targets import Target, targets

SAVE_EVERY = 2000


PACKAGES = ("mediagw.", "segmenter.", "webrtc.")


def instrument(atheris: Any) -> int:
    """Coverage instrumentation of the project's own code only (instrumenting every loaded
    module, PyAV and protobuf included, takes minutes and guides nothing we own)."""
    done = 0
    for name, module in list(sys.modules.items()):
        if not name.startswith(PACKAGES) or name.startswith("mediagw.bench"):
            continue
        for obj in list(vars(module).values()):
            funcs: list[Any] = []
            if inspect.isfunction(obj) and obj.__module__ == name:
                funcs.append(obj)
            elif inspect.isclass(obj) and obj.__module__ == name:
                for attr in vars(obj).values():
                    inner = getattr(attr, "__func__", attr)
                    if inspect.isfunction(inner):
                        funcs.append(inner)
                    elif isinstance(attr, property) and attr.fget is not None:
                        funcs.append(attr.fget)
            for func in funcs:
                try:
                    atheris.instrument_func(func)
                    done += 1
                except Exception:  # a function atheris cannot patch stays as it is
                    continue
    return done


def run_atheris(target: Target, inputs: int, seed: int, out: str) -> None:
    atheris: Any = importlib.import_module("atheris")

    seeds = target.seeds()  # built before instrumenting (PyAV, key generation)
    runner = Runner(target, "atheris")
    logging.disable(logging.CRITICAL)
    runner._timer = False  # libFuzzer's -timeout catches hangs
    clock = {"start": time.perf_counter(), "findings": 0}

    def one(data: bytes) -> None:
        runner.one(data)
        rep = runner.report
        new = len(rep.findings) != clock["findings"]
        if new or rep.inputs % SAVE_EVERY == 0 or rep.inputs >= inputs:
            clock["findings"] = len(rep.findings)
            rep.seconds = time.perf_counter() - clock["start"]
            save(rep, out)

    corpus = tempfile.mkdtemp(prefix="corpus-", dir=".")  # the parent removes its cwd
    for i, s in enumerate(seeds):
        Path(corpus, f"seed{i}").write_bytes(s[: target.max_len])
    for s in seeds:  # imports the parser's modules, so that they can be instrumented
        runner.one(s[: target.max_len])
    runner.report = TargetReport(target.name, "atheris")
    instrument(atheris)
    clock["start"] = time.perf_counter()
    argv = [
        sys.argv[0],
        f"-runs={inputs}",
        f"-seed={seed or 1}",
        f"-max_len={target.max_len}",
        f"-timeout={int(HANG_SECONDS)}",
        "-rss_limit_mb=4096",
        "-print_final_stats=0",
        "-artifact_prefix=./",
        corpus,
    ]
    atheris.Setup(argv, one)
    atheris.Fuzz()


def main() -> int:
    name, inputs, seed, engine, out = sys.argv[1:6]
    faulthandler.enable()
    target = targets()[name]
    save(TargetReport(name, engine), out)
    if engine == "atheris":
        run_atheris(target, int(inputs), int(seed), out)
        return 0
    rep = run_mutations(target, int(inputs), int(seed))
    save(rep, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
