"""pytest plugin: no secret of the run appears in its logs (loaded by tests/conftest.py).

At session start it records every secret the run mints or takes in (``secret_sources``), adds a
handler to the root logger that renders every record as ``mediagw.log``'s text and JSON
formatters would, into a file under the run's temp dir, and hard-links the log file of every
``mediagw`` process a test starts (its stdout/stderr when they are files: the nodes' ``NODE.log``,
the bench's, ...) into the same directory, so a log removed with its test's temp dir is still
read. At session end it scans all of it for every recorded secret and every secret format
(``secret_sources.FORMATS``), reports each finding (kind, redacted prefix, logger, test) and makes
the run fail. Values shorter than ``MIN_LENGTH`` are counted but not scanned.

The root logger is set to INFO for the run (``--secret-scan-level``, default ``info``: the level a
gateway logs at unless told otherwise; the root's WARNING would leave most gateway lines unmade);
``--secret-scan-level=debug`` audits the debug lines too (no measurable CPU cost on the e2e
files, but libraries' debug chatter: not the default), ``--secret-scan-level=`` leaves the level
to the tests. ``-p no:secret_scan`` turns the scan off.

Under pytest-xdist (``make test`` runs ``tests/e2e`` and ``tests/platform`` on two workers) each
worker records and scans what its own tests log and start, and hands its findings and counts to
the controller (``workeroutput``), which reports them all and fails the run on any finding.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
import secret_sources
from secret_sources import FORMATS, Registry

from mediagw.log import JSONFormatter, TextFormatter

RS, FS = "\x1e", "\x1f"  # between records, between a record's fields
CHUNK = 32 << 20


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--secret-scan-level",
        default="info",
        help="set the root logger to this level for the run ('': leave it; default: info)",
    )


class _Capture(logging.Handler):
    """Every record, as text and as JSON, with the test and the logger, into ``path``."""

    def __init__(self, scan: SecretScan, only_unpropagated: str = "") -> None:
        super().__init__(logging.NOTSET)
        self.scan = scan
        self.only_unpropagated = only_unpropagated
        self.text, self.json = TextFormatter(), JSONFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        if self.only_unpropagated and logging.getLogger(self.only_unpropagated).propagate:
            return  # the root's handler gets it
        try:
            line = FS.join((self.scan.test, record.name, self.text.format(record),
                            self.json.format(record)))  # fmt: skip
        except Exception:  # a record that cannot be formatted is the test's business
            return
        self.scan.write(line)


@dataclass
class Finding:
    kind: str
    value: str
    test: str
    logger: str
    where: str  # "log record" or the subprocess log's file name

    def line(self) -> str:
        shown = f"{self.value[:4]}...({len(self.value)} chars)"
        return f"  {self.kind} {shown} in {self.where}: logger {self.logger}, test {self.test}"


def _trie_pattern(words: Iterable[str]) -> str:
    """One regex matching any of ``words`` (a trie: cost per position ~ depth, not count)."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = True

    def render(node: dict[str, Any]) -> str:
        end = "" in node
        branches = []
        for ch in sorted(k for k in node if k):
            child, literal = node[ch], ch
            while len(child) == 1 and "" not in child:  # a chain: one literal
                (nxt, child), = child.items()  # fmt: skip
                literal += nxt
            branches.append(re.escape(literal) + render(child))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if end else body

    return render(root) if root else r"(?!)"


class SecretScan:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.registry = Registry()
        self.records = 0
        self.subprocess_bytes = 0
        self.findings: list[Finding] = []
        self.handlers: list[_Capture] = []
        self._undo: list[Any] = []
        self._links: dict[tuple[int, int], Path] = {}
        self._spawned = 0
        self.dir = Path()
        self._out: Any = None
        self.done = False
        self.seconds = 0.0  # the scan's own
        self.workers: list[dict[str, Any]] = []  # under xdist, the controller: each worker's

    @property
    def test(self) -> str:
        return self.registry.test

    def write(self, line: str) -> None:
        self.records += 1
        self._out.write(line + RS)

    # session start and end

    def start(self) -> None:
        factory = self.config._tmp_path_factory  # type: ignore[attr-defined]
        self.dir = factory.getbasetemp() / "secret-scan"
        (self.dir / "subprocess").mkdir(parents=True, exist_ok=True)
        self._out = open(self.dir / "records.txt", "w", encoding="utf-8", errors="replace")  # noqa: SIM115
        self.handlers = [_Capture(self), _Capture(self, "mediagw")]
        self.attach()
        level = self.config.getoption("--secret-scan-level")
        if level:
            logging.getLogger().setLevel(level.upper())
        self._undo.append(secret_sources.install(self.registry))
        self._wrap_popen()

    def attach(self) -> None:
        """(Re)attach the handlers: ``setup_logging`` (a CLI test) replaces the root's."""
        root, mediagw = logging.getLogger(), logging.getLogger("mediagw")
        if self.handlers[0] not in root.handlers:
            root.addHandler(self.handlers[0])
        if self.handlers[1] not in mediagw.handlers:
            mediagw.addHandler(self.handlers[1])

    def finish(self) -> None:
        if self.done:
            return
        self.done = True
        logging.getLogger().removeHandler(self.handlers[0])
        logging.getLogger("mediagw").removeHandler(self.handlers[1])
        for undo in reversed(self._undo):
            undo()
        self._out.close()
        started = time.perf_counter()
        self.scan()
        self.seconds = time.perf_counter() - started

    # gateway processes

    def _wrap_popen(self) -> None:
        original = subprocess.Popen.__init__
        scan = self

        def init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
            argv = [str(a) for a in ([args] if isinstance(args, str | bytes) else args)]
            gateway = _is_mediagw(argv)
            if gateway:
                secret_sources.gateway_flags(argv, kwargs.get("env"))
            original(self, args, *rest, **kwargs)
            if gateway and "keys" not in argv:  # `keys create` prints the key it made
                for name in ("stdout", "stderr"):
                    scan._link(kwargs.get(name), argv)

        subprocess.Popen.__init__ = init  # type: ignore[method-assign]

        def undo() -> None:
            subprocess.Popen.__init__ = original  # type: ignore[method-assign]

        self._undo.append(undo)

    def _link(self, target: Any, argv: list[str]) -> None:
        fd = target if isinstance(target, int) else getattr(target, "fileno", lambda: -1)()
        if fd < 0:
            return
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in self._links:
            return
        self._spawned += 1
        test = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.test)[-120:]
        dest = self.dir / "subprocess" / f"{self._spawned:04d}-{test}.log"
        source = os.readlink(f"/proc/self/fd/{fd}")
        try:
            os.link(source, dest)  # the same file: what the process writes later is read too
        except OSError:
            dest = Path(source)  # another file system: read where it is, if still there
        self._links[(st.st_dev, st.st_ino)] = dest
        with open(self.dir / "subprocess" / "tests.txt", "a") as index:
            index.write(f"{dest.name}\t{self.test}\n")

    # the scan

    def scan(self) -> None:
        patterns = [("", re.compile(_trie_pattern(self.registry.secrets))), *FORMATS.items()]
        seen: set[tuple[str, str, str, str]] = set()

        def found(kind: str, value: str, test: str, logger: str, where: str) -> None:
            secret = self.registry.secrets.get(value)
            kind = secret.kind if secret is not None else kind or "secret"
            if (value, test, logger, where) not in seen:
                seen.add((value, test, logger, where))
                self.findings.append(Finding(kind, value, test, logger, where))

        for blob in _chunks(self.dir / "records.txt"):
            for kind, pattern in patterns:
                for m in pattern.finditer(blob):
                    start = blob.rfind(RS, 0, m.start()) + 1
                    test, logger, _ = blob[start : start + 2000].split(FS, 2)
                    if m.start() < start + len(test) + len(logger) + 2:
                        continue  # in the test's id (a parameter), not in the record
                    found(kind, m.group(), test, logger, "a log record")
        tests = _launched_by(self.dir / "subprocess" / "tests.txt")
        for path in set(self._links.values()):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            self.subprocess_bytes += len(text)
            test = tests.get(path.name, "?")
            for kind, pattern in patterns:
                for m in pattern.finditer(text):
                    logger = _logger_of(text[text.rfind("\n", 0, m.start()) + 1 : m.start()])
                    found(kind, m.group(), test, logger, f"process log {path.name}")
        if not self.findings:  # else kept, to be read
            shutil.rmtree(self.dir / "subprocess", ignore_errors=True)

    def totals(self) -> dict[str, Any]:
        """What a worker hands the controller: its findings and its counts."""
        return {
            "findings": [asdict(f) for f in self.findings],
            "secrets": len(self.registry.secrets),
            "records": self.records,
            "subprocess_bytes": self.subprocess_bytes,
            "too_short": len(self.registry.too_short),
            "seconds": self.seconds,
        }

    def merge(self, worker: dict[str, Any]) -> None:
        """A worker's totals (under xdist, in the controller): its findings fail this run."""
        self.workers.append(worker)
        self.findings += [Finding(**f) for f in worker["findings"]]

    def summary(self) -> str:
        """This process's counts, and under xdist every worker's added."""
        parts = [self.totals(), *self.workers]

        def total(name: str) -> Any:
            return sum(part[name] for part in parts)

        state = f"{len(self.findings)} LEAKED" if self.findings else "clean"
        ran = f" on {len(self.workers)} workers" if self.workers else ""
        return (
            f"secret scan{ran}: {total('secrets')} secrets, {total('records')} log records,"
            f" {total('subprocess_bytes')} bytes of subprocess logs: {state}"
            f" ({total('too_short')} values under {secret_sources.MIN_LENGTH} characters not"
            f" scanned; scanned in {total('seconds'):.1f} s)"
        )


def _chunks(path: Path) -> Iterator[str]:
    """The file's text in pieces of whole records."""
    carry = ""
    with open(path, encoding="utf-8", errors="replace") as fh:
        while piece := fh.read(CHUNK):
            text = carry + piece
            cut = text.rfind(RS) + 1
            carry = text[cut:]
            if cut:
                yield text[:cut]
    if carry:
        yield carry


def _launched_by(index: Path) -> dict[str, str]:
    if not index.exists():
        return {}
    return dict(line.split("\t", 1) for line in index.read_text().splitlines() if "\t" in line)


def _logger_of(line: str) -> str:
    """The logger of a text or JSON line of mediagw.log (else "?")."""
    json_logger = re.search(r'"logger": "([^"]+)"', line)
    if json_logger:
        return json_logger.group(1)
    parts = line.split()
    return parts[2] if len(parts) > 2 and re.fullmatch(r"\d\d:\d\d:\d\d\.\d+", parts[0]) else "?"


def _is_mediagw(argv: list[str]) -> bool:
    """A mediagw process: the ``mediagw`` script, ``-m mediagw...``, or ``-c`` code of it."""
    if argv and os.path.basename(argv[0]) == "mediagw":
        return True
    return any(
        flag in ("-c", "-m") and re.search(r"\bmediagw\b", code)
        for flag, code in itertools.pairwise(argv)
    )


# hooks

_KEY = pytest.StashKey[SecretScan]()
_OUTPUT = "secret_scan"  # the key of a worker's totals in xdist's workeroutput


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    scan = session.config.stash[_KEY] = SecretScan(session.config)
    scan.start()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    scan = item.config.stash.get(_KEY, None)
    if scan is not None:
        scan.registry.test = item.nodeid
        scan.attach()
    try:
        return (yield)
    finally:
        if scan is not None:
            scan.registry.test = "(session)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    scan = item.config.stash.get(_KEY, None)
    if scan is not None:
        scan.attach()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    scan = item.config.stash.get(_KEY, None)
    if scan is not None:
        scan.attach()
    return (yield)


@pytest.hookimpl(tryfirst=True)  # before the temp dirs are cleaned up
def pytest_sessionfinish(session: pytest.Session) -> None:
    scan = session.config.stash.get(_KEY, None)
    if scan is None:
        return
    scan.finish()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports and fails the run
        workeroutput[_OUTPUT] = scan.totals()
    if scan.findings and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist, in the controller: a worker finished; take its scan's findings and counts."""
    scan = node.config.stash.get(_KEY, None)
    output = getattr(node, "workeroutput", None) or {}
    if scan is not None and _OUTPUT in output:
        scan.merge(output[_OUTPUT])


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    scan = config.stash.get(_KEY, None)
    if scan is None or not scan.done:
        return
    if scan.findings:
        terminalreporter.section("secret scan", sep="=", red=True, bold=True)
        terminalreporter.line("secrets found in the run's logs (gateways must redact them):")
        for finding in scan.findings[:200]:
            terminalreporter.line(finding.line())
    terminalreporter.line(scan.summary(), red=bool(scan.findings))
