"""``mediagw bench fuzz``: every network parser against mutated inputs.

Two engines. ``mutate`` (the default, deterministic with ``--seed``): binary mutations of the
seeds (bit flips, interesting values, inserts, deletions, truncations, duplications, splices,
runs of a short slice),
inputs that parse cleanly joining the pool so mutations go deeper. ``atheris`` (when installed):
libFuzzer's coverage-guided mutation of the same seeds, one child process per target.

Each input ends OK, in an expected refusal (mediagw's error tree or the parser's documented
ValueError-family refusal) or in a finding: any other exception, an input that takes longer
than ``HANG_SECONDS`` (a hang), or a child process that died (a crash). Findings are shown with
a hex reproducer; the exit status is non-zero when there is one.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .fuzz_targets import Target, targets

HANG_SECONDS = 5.0
_ROOT = str(Path(__file__).resolve().parents[2])  # the checkout the child imports
SHOWN = 3  # distinct findings shown per target
POOL = 512  # mutated inputs kept as parents
_INTERESTING = (
    b"\x00",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
    b"\x7f\xff\xff\xff",
)


class Hang(Exception):
    """An input ran longer than HANG_SECONDS."""


@dataclass
class Finding:
    kind: str  # "exception", "hang" or "crash"
    error: str
    where: str
    reproducer: str  # hex


@dataclass
class TargetReport:
    target: str
    engine: str
    inputs: int = 0
    ok: int = 0
    refused: int = 0
    crashes: int = 0
    exceptions: int = 0
    hangs: int = 0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    findings: list[Finding] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.crashes or self.exceptions or self.hangs)

    @property
    def rate(self) -> float:
        return self.inputs / self.seconds if self.seconds > 0 else 0.0


def mutate(rng: random.Random, data: bytes, pool: list[bytes], max_len: int) -> bytes:
    """One to four binary mutations of ``data``."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(10)
        n = len(buf)
        if op == 0 and n:  # bit flip
            i = rng.randrange(n)
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # random byte
            buf[rng.randrange(n)] = rng.randrange(256)
        elif op == 2 and n:  # interesting value
            v = rng.choice(_INTERESTING)
            i = rng.randrange(n)
            buf[i : i + len(v)] = v
        elif op == 3:  # insert random bytes
            i = rng.randint(0, n)
            buf[i:i] = rng.randbytes(rng.choice((1, 2, 4, 16, 200)))
        elif op == 4 and n:  # delete a range
            i = rng.randrange(n)
            del buf[i : i + rng.randint(1, 64)]
        elif op == 5 and n:  # truncate
            del buf[rng.randrange(n) :]
        elif op == 6 and n:  # duplicate a range
            i = rng.randrange(n)
            j = min(n, i + rng.randint(1, 256))
            buf[j:j] = buf[i:j]
        elif op == 7 and pool:  # splice with another input
            other = rng.choice(pool)
            i, j = rng.randint(0, n), rng.randint(0, len(other))
            buf = buf[:i] + other[j:]
        elif op == 8 and n:  # swap two bytes
            i, j = rng.randrange(n), rng.randrange(n)
            buf[i], buf[j] = buf[j], buf[i]
        elif op == 9 and n:  # a run of one of its slices (deep nesting, long numbers)
            i = rng.randrange(n)
            piece = buf[i : i + rng.choice((1, 1, 2, 4, 8, 10, 12))]
            buf[i:i] = piece * rng.choice((8, 64, 1500, 3000))
    return bytes(buf[:max_len])


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    return f"{last.filename.rsplit('/', 2)[-1]}:{last.lineno} in {last.name}" if last else "?"


def _alarm(signum: int, frame: object) -> None:
    raise Hang(f"no result within {HANG_SECONDS:g} s")


class Runner:
    """Classifies one target's inputs and collects distinct findings."""

    def __init__(self, target: Target, engine: str) -> None:
        self.target = target
        self.report = TargetReport(target.name, engine)
        self._seen: set[tuple[str, str]] = set()
        self._timer = threading.current_thread() is threading.main_thread()

    def one(self, data: bytes) -> bool:
        """Run one input; True when it parsed cleanly."""
        rep = self.report
        rep.inputs += 1
        if self._timer:
            signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
        try:
            self.target.parse(data)
        except Hang as exc:
            rep.hangs += 1
            self._note("hang", exc, data)
        except self.target.expected:
            rep.refused += 1
            return False
        except Exception as exc:
            rep.exceptions += 1
            self._note("exception", exc, data)
        else:
            rep.ok += 1
            return True
        finally:
            if self._timer:
                signal.setitimer(signal.ITIMER_REAL, 0)
        return False

    def _note(self, kind: str, exc: BaseException, data: bytes) -> None:
        key = (type(exc).__name__, _where(exc))
        if key in self._seen:
            return
        self._seen.add(key)
        if len(self.report.findings) < SHOWN:
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
            self.report.findings.append(Finding(kind, error, key[1], data.hex()))


def run_mutations(target: Target, inputs: int, seed: int) -> TargetReport:
    """The deterministic engine, in this process."""
    rng = random.Random(f"{seed}:{target.name}")
    runner = Runner(target, "mutate")
    logging.disable(logging.CRITICAL)  # parsers log what they skip: millions of lines here
    # an alarm already set (pytest-timeout's) is put back, less the time spent, at the end
    pending = signal.getitimer(signal.ITIMER_REAL)[0] if runner._timer else 0.0
    old = signal.signal(signal.SIGALRM, _alarm) if runner._timer else None
    start = time.perf_counter()
    try:
        seeds = [s[: target.max_len] for s in target.seeds()] or [b""]
        pool = list(seeds)
        for s in seeds[:inputs]:
            runner.one(s)
        for _ in range(max(0, inputs - len(seeds))):
            parent = rng.choice(seeds) if rng.random() < 0.3 else rng.choice(pool)
            data = mutate(rng, parent, pool, target.max_len)
            if runner.one(data):
                if len(pool) < POOL:
                    pool.append(data)
                else:
                    pool[rng.randrange(len(seeds), POOL)] = data
    finally:
        logging.disable(logging.NOTSET)
        if old is not None:
            signal.signal(signal.SIGALRM, old)
            if pending > 0:
                left = pending - (time.perf_counter() - start)
                signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))
    rep = runner.report
    rep.seconds = time.perf_counter() - start
    rep.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return rep


def _worker_argv(name: str, inputs: int, seed: int, engine: str, out: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mediagw.bench.fuzz_worker",
        name,
        str(inputs),
        str(seed),
        engine,
        out,
    ]


def run_isolated(name: str, inputs: int, seed: int, engine: str) -> TargetReport:
    """One target in a child process: a crash (a signal, a libFuzzer abort) is a finding, and
    the child's own peak RSS is what is reported."""
    with tempfile.TemporaryDirectory(prefix="mediagw-fuzz-") as tmp:
        out = os.path.join(tmp, "report.json")
        start = time.perf_counter()
        proc = subprocess.Popen(
            _worker_argv(name, inputs, seed, engine, out),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=tmp,  # libFuzzer writes its crash-* artifacts here
            env={**os.environ, "PYTHONPATH": _ROOT},
        )
        assert proc.stderr is not None
        err_tail = proc.stderr.read()[-4000:].decode("utf-8", "replace")
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        rep = _load(out, name, engine)
        rep.peak_rss_mb = usage.ru_maxrss / 1024
        if proc.returncode != 0:
            rep.crashes += 1
            artifacts = (p for k in ("crash", "timeout", "oom") for p in Path(tmp).glob(f"{k}-*"))
            crash = next(artifacts, None)
            repro = crash.read_bytes().hex() if crash else ""
            rep.findings.append(
                Finding("crash", f"exit status {proc.returncode}", err_tail[-600:], repro)
            )
        if rep.seconds == 0:
            rep.seconds = seconds
        return rep


def _load(path: str, name: str, engine: str) -> TargetReport:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return TargetReport(name, engine)
    findings = [Finding(**f) for f in doc.pop("findings", [])]
    return TargetReport(**doc, findings=findings)


def save(rep: TargetReport, path: str) -> None:
    tmp = path + ".tmp"
    Path(tmp).write_text(json.dumps(asdict(rep)))
    os.replace(tmp, path)


def table(reports: list[TargetReport]) -> str:
    head = (
        f"{'target':<18} {'engine':<7} {'inputs':>8} {'crashes':>7} {'other exc':>9} "
        f"{'hangs':>5} {'peak RSS MB':>11} {'inputs/s':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in reports:
        lines.append(
            f"{r.target:<18} {r.engine:<7} {r.inputs:>8} {r.crashes:>7} {r.exceptions:>9} "
            f"{r.hangs:>5} {r.peak_rss_mb:>11.0f} {r.rate:>9.0f}"
        )
    return "\n".join(lines)


def atheris_available() -> bool:
    return importlib.util.find_spec("atheris") is not None


def list_targets() -> int:
    for t in targets().values():
        print(f"{t.name:<18} {t.what}")
    return 0


def run_fuzz_bench(
    target: str, inputs: int, seed: int, engine: str, json_out: str = "", isolate: bool = True
) -> int:
    known = targets()
    names = list(known) if target == "all" else [target]
    unknown = [n for n in names if n not in known]
    if unknown:
        print(
            f"unknown fuzz target {unknown[0]!r}; one of: all, {', '.join(known)}", file=sys.stderr
        )
        return 2
    if engine == "auto":
        engine = "atheris" if atheris_available() else "mutate"
    if engine == "atheris" and not atheris_available():
        print(
            "atheris is not installed: pip install atheris, or use --engine mutate", file=sys.stderr
        )
        return 2
    reports: list[TargetReport] = []
    for name in names:
        if isolate or engine == "atheris":
            rep = run_isolated(name, inputs, seed, engine)
        else:
            rep = run_mutations(known[name], inputs, seed)
        reports.append(rep)
        print(table([rep]).splitlines()[-1], flush=True)
    print()
    print(table(reports))
    for rep in reports:
        for f in rep.findings:
            print(f"\n{rep.target}: {f.kind}: {f.error}\n  at {f.where}")
            print(f"  reproducer (hex): {f.reproducer[:2000]}")
    if json_out:
        Path(json_out).write_text(json.dumps([asdict(r) for r in reports], indent=2))
    failed = [r.target for r in reports if r.failed]
    if failed:
        print(f"\nfindings in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
