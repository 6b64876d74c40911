"""The short fuzz slice of ``make test``: every parser target a few hundred mutated inputs, no
finding; and the bench itself reports what it must (findings with reproducers, a crash, the exit
status)."""

from __future__ import annotations

import random
import signal

import pytest

from mediagw.bench import fuzz
from mediagw.bench.fuzz_targets import Target, targets

SLICE = 300


@pytest.mark.parametrize("name", sorted(targets()))
def test_target_slice_has_no_finding(name: str) -> None:
    target = targets()[name]
    seeds = target.seeds()
    assert seeds
    rep = fuzz.run_mutations(target, SLICE, seed=1)
    assert rep.inputs == SLICE
    assert rep.ok > 0, "the seeds and some mutations parse: the target reaches the parser"
    assert (rep.crashes, rep.exceptions, rep.hangs) == (0, 0, 0), rep.findings


def test_first_seeds_parse_cleanly() -> None:
    """Mutations start from valid inputs (other seeds may be refusals on purpose)."""
    for target in targets().values():
        seed = target.seeds()[0]
        assert seed, target.name
        target.parse(seed[: target.max_len])


def _boom(data: bytes) -> object:
    if data.startswith(b"\x00"):
        raise KeyError("oops")
    if data.startswith(b"\x01"):
        raise ValueError("refused")  # the documented refusal
    return data


def test_findings_are_counted_and_shown_with_a_reproducer() -> None:
    target = Target("boom", "test", _boom, lambda: [b"\x02abc"], (ValueError,), max_len=64)
    rep = fuzz.run_mutations(target, 3000, seed=3)
    assert rep.exceptions > 0 and rep.refused > 0 and rep.ok > 0
    assert rep.failed
    (finding,) = rep.findings  # one distinct finding (type and place)
    assert finding.kind == "exception" and finding.error.startswith("KeyError")
    assert bytes.fromhex(finding.reproducer).startswith(b"\x00")
    assert "test_fuzz.py" in finding.where


def test_mutations_are_deterministic() -> None:
    seeds = [b"hello world", b"\x00\x01\x02"]

    def run(seed: int) -> list[bytes]:
        rng = random.Random(seed)
        return [fuzz.mutate(rng, seeds[i % 2], seeds, 100) for i in range(50)]

    assert run(5) == run(5) != run(6)
    assert all(len(m) <= 100 for m in run(7))


def test_a_hang_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fuzz, "HANG_SECONDS", 0.2)

    def slow(data: bytes) -> object:
        while data.startswith(b"\x00"):
            pass
        return None

    rep = fuzz.run_mutations(Target("slow", "t", slow, lambda: [b"\x00"]), 1, seed=1)
    assert rep.hangs == 1 and rep.findings[0].kind == "hang"


def test_bench_reports_a_table_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert fuzz.run_fuzz_bench("amf0", 200, 1, "mutate", isolate=False) == 0
    out = capsys.readouterr().out
    assert "amf0" in out and "mutate" in out and "peak RSS MB" in out


def test_a_child_that_dies_is_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """A parser that kills the process (a segfault in a C extension) is reported as a crash."""
    real = fuzz._worker_argv

    def dying(name: str, inputs: int, seed: int, engine: str, out: str) -> list[str]:
        argv = real(name, inputs, seed, engine, out)
        code = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
        return [argv[0], "-c", code]

    monkeypatch.setattr(fuzz, "_worker_argv", dying)
    rep = fuzz.run_isolated("amf0", 10, 1, "mutate")
    assert rep.crashes == 1 and rep.failed
    assert rep.findings[0].kind == "crash" and rep.findings[0].error == "exit status -11"


def test_unknown_target_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert fuzz.run_fuzz_bench("nope", 1, 1, "mutate") == 2
    assert "one of: all, rtmp_handshake" in capsys.readouterr().err


@pytest.mark.skipif(not fuzz.atheris_available(), reason="atheris is not installed")
def test_atheris_engine_runs_coverage_guided() -> None:
    rep = fuzz.run_isolated("amf0", 300, 1, "atheris")
    assert rep.engine == "atheris" and rep.inputs == 300 and not rep.failed, rep.findings
    assert rep.refused > 0 and rep.ok > 0


def test_an_alarm_already_set_is_put_back() -> None:
    """pytest-timeout's SIGALRM survives a run (the per-input hang timer borrows it)."""
    fired: list[int] = []
    old = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 60.0)
        fuzz.run_mutations(targets()["amf0"], 50, seed=1)
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 50.0 < left <= 60.0 and signal.getsignal(signal.SIGALRM) is not fuzz._alarm
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert not fired
