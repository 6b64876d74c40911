"""Trust-on-first-use certificate pinning for orchestrator TLS (transcode spec §2.2).

Orchestrators serve a self-signed certificate that they regenerate at every start, so CA
verification is off and instead:

- the first contact with a host:port pins the SHA-256 of its certificate (DER);
- a different certificate later is accepted ONCE (re-pin, with a warning: O restarted);
- another change within ``repin_window_s`` (10 min) of that re-pin is refused with
  ``CertificatePinError``;
- ``insecure=True`` (explicit opt-in) skips pinning altogether.

O's real identity is proven by its ETH signature over results (§5.10); the pin only stops a
man in the middle from swapping in mid-session.

Several gateway nodes share their pins (``platform/shared/orchestrators``): ``on_pin`` hears of
each pin and re-pin made here, ``adopt`` takes one made on another node (the first pin of an
O on any node is every node's pin, and a re-pin anywhere starts the window everywhere).

The check runs inside the TLS handshake: contexts from ``PinStore.client_context`` use an
``SSLObject`` subclass whose ``do_handshake`` checks the pin before any request byte is sent. This
works for ``asyncio.open_connection`` and aiohttp alike, on the default loop and on uvloop. A
refused pin surfaces as an ``ssl.SSLCertVerificationError`` subclass; ``pin_error_from`` recovers
the ``CertificatePinError`` from whatever a client library wrapped it in.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import ssl
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mediagw.errors import ConfigError

from .errors import CertificatePinError

__all__ = ["PinStore", "ca_context", "host_port_key", "pin_error_from"]

log = logging.getLogger("mediagw.livepeer.tls")

MAX_PINS = 10_000
MAX_PIN_FILE_BYTES = 4 << 20
_MAX_CONTEXTS = 4096


def host_port_key(host: str, port: int) -> str:
    host = host.lower().strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _PinRefused(ssl.SSLCertVerificationError):
    """Raised inside the handshake; an SSLError so the event loop fails the connection cleanly."""

    def __init__(self, error: CertificatePinError) -> None:
        super().__init__(1, str(error))
        self.pin_error = error


class _PinnedContext(ssl.SSLContext):
    """A client context bound to one host:port and its PinStore (attributes set after creation)."""

    pin_store: PinStore
    pin_key: str


class _PinnedSSLObject(ssl.SSLObject):
    def do_handshake(self) -> None:
        super().do_handshake()
        ctx = self.context
        if isinstance(ctx, _PinnedContext) and not ctx.pin_store.insecure:
            der = self.getpeercert(binary_form=True)
            try:
                if der is None:
                    raise CertificatePinError("peer sent no certificate", f"https://{ctx.pin_key}")
                ctx.pin_store.check(ctx.pin_key, hashlib.sha256(der).digest())
            except CertificatePinError as exc:
                raise _PinRefused(exc) from None


def pin_error_from(exc: BaseException) -> CertificatePinError | None:
    """The CertificatePinError behind an exception raised by asyncio, aiohttp or ssl, if any."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, _PinRefused):
            return item.pin_error
        if isinstance(item, CertificatePinError):
            return item
        todo.extend([item.__cause__, item.__context__, *item.args])
        todo.extend(getattr(item, name, None) for name in ("certificate_error", "os_error"))
    return None


class PinStore:
    """Pins per host:port, in memory, optionally persisted to a JSON file.

    ``path``: JSON file to load at construction (if it exists) and to rewrite after each change
    (atomically, off the event loop). ``clock``: monotonic seconds, for the re-pin window.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        insecure: bool = False,
        repin_window_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.insecure = insecure
        self.repin_window_s = repin_window_s
        self._clock = clock
        self._pins: dict[str, bytes] = {}
        self._repinned_at: dict[str, float] = {}
        self._contexts: dict[tuple[str, tuple[str, ...]], ssl.SSLContext] = {}
        self._dirty = False
        self._save_task: asyncio.Task[None] | None = None
        #: Hears of each pin made here: (host:port, sha256, whether it replaced a pin).
        self.on_pin: Callable[[str, bytes, bool], None] | None = None
        if self.path is not None and self.path.exists():
            self._load(self.path)

    # -- pins ---------------------------------------------------------------------------------
    def fingerprint(self, key: str) -> bytes | None:
        """The pinned SHA-256 for ``host:port`` (see ``host_port_key``), or None."""
        return self._pins.get(key)

    def snapshot(self) -> dict[str, str]:
        return {k: v.hex() for k, v in self._pins.items()}

    def check(self, key: str, fingerprint: bytes) -> bool:
        """Check a peer certificate's SHA-256 against the pin; True if the pins changed.

        Raises ``CertificatePinError`` on a second change inside the re-pin window.
        """
        if self.insecure:
            return False
        pinned = self._pins.get(key)
        if pinned == fingerprint:
            return False
        now = self._clock()
        if pinned is None:
            log.info(
                "pinned orchestrator certificate", extra={"peer": key, "sha256": fingerprint.hex()}
            )
        else:
            last = self._repinned_at.get(key)
            if last is not None and now - last < self.repin_window_s:
                raise CertificatePinError(
                    f"TLS certificate changed again {now - last:.0f} s after it was re-pinned "
                    f"(pinned sha256 {pinned.hex()[:16]}..., offered {fingerprint.hex()[:16]}...); "
                    f"refusing for {self.repin_window_s - (now - last):.0f} s more",
                    f"https://{key}",
                )
            log.warning(
                "orchestrator certificate changed (restart?): re-pinned",
                extra={"peer": key, "old_sha256": pinned.hex(), "sha256": fingerprint.hex()},
            )
            self._repinned_at[key] = now
        self._put(key, fingerprint)
        if self.on_pin is not None:
            self.on_pin(key, fingerprint, pinned is not None)
        return True

    def adopt(self, key: str, fingerprint: bytes, repinned_ago: float | None = None) -> None:
        """Take a pin made elsewhere (another node): it replaces this store's pin for ``key``;
        ``repinned_ago``: seconds since it was a re-pin (the window applies here too)."""
        if self.insecure:
            return
        if repinned_ago is not None and repinned_ago < self.repin_window_s:
            at = self._clock() - max(0.0, repinned_ago)
            self._repinned_at[key] = max(at, self._repinned_at.get(key, at))
        if self._pins.get(key) != fingerprint:
            self._put(key, fingerprint)

    def _put(self, key: str, fingerprint: bytes) -> None:
        self._pins.pop(key, None)
        self._pins[key] = fingerprint
        while len(self._pins) > MAX_PINS:
            oldest = next(iter(self._pins))
            del self._pins[oldest]
            self._repinned_at.pop(oldest, None)
        self._changed()

    # -- contexts -----------------------------------------------------------------------------
    def client_context(self, host: str, port: int, *, alpn: Sequence[str]) -> ssl.SSLContext:
        """A TLS client context for one orchestrator host:port: no CA verification, pin checked
        during the handshake, the given ALPN protocols. Cached; safe to reuse for pooling."""
        key = host_port_key(host, port)
        cache_key = (key, tuple(alpn))
        ctx = self._contexts.get(cache_key)
        if ctx is None:
            pinned = _PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
            pinned.check_hostname = False
            pinned.verify_mode = ssl.CERT_NONE
            pinned.minimum_version = ssl.TLSVersion.TLSv1_2
            if alpn:
                pinned.set_alpn_protocols(list(alpn))
            pinned.sslobject_class = _PinnedSSLObject
            pinned.pin_store = self
            pinned.pin_key = key
            if len(self._contexts) >= _MAX_CONTEXTS:
                self._contexts.clear()
            self._contexts[cache_key] = ctx = pinned
        return ctx

    # -- persistence --------------------------------------------------------------------------
    def _load(self, path: Path) -> None:
        try:
            with path.open("rb") as f:
                raw = f.read(MAX_PIN_FILE_BYTES + 1)
            if len(raw) > MAX_PIN_FILE_BYTES:
                raise ValueError(f"larger than {MAX_PIN_FILE_BYTES} bytes")
            data = json.loads(raw)
            pins = data["pins"]
            if not isinstance(pins, dict):
                raise ValueError("'pins' is not an object")
            for key, value in pins.items():
                fp = bytes.fromhex(value)
                if len(fp) != 32:
                    raise ValueError(f"pin for {key!r} is not 32 bytes of hex")
                self._pins[str(key)] = fp
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"certificate pin file {path}: unusable ({exc}); fix or delete it"
            ) from None

    def save(self) -> None:
        """Write the pins now (blocking; atomic rename)."""
        if self.path is not None:
            self._write(self.path, self.snapshot())

    @staticmethod
    def _write(path: Path, pins: dict[str, str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"version": 1, "pins": pins}, f, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _changed(self) -> None:
        if self.path is None:
            return
        self._dirty = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save()
            self._dirty = False
            return
        if self._save_task is None or self._save_task.done():
            self._save_task = loop.create_task(self._save_loop())

    async def _save_loop(self) -> None:
        assert self.path is not None
        while self._dirty:
            self._dirty = False
            try:
                await asyncio.to_thread(self._write, self.path, self.snapshot())
            except OSError as exc:
                log.warning(
                    "cannot save certificate pins",
                    extra={"path": str(self.path), "error": str(exc)},
                )

    async def flush(self) -> None:
        """Wait until pending pin changes are on disk."""
        task = self._save_task
        if task is not None:
            await asyncio.shield(task)


_CA_CONTEXTS: dict[tuple[str, ...], ssl.SSLContext] = {}


def ca_context(alpn: Sequence[str] = ()) -> ssl.SSLContext:
    """A normal CA-verifying context (for URLs outside the orchestrator, e.g. object stores)."""
    key = tuple(alpn)
    ctx = _CA_CONTEXTS.get(key)
    if ctx is None:
        ctx = ssl.create_default_context()
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        _CA_CONTEXTS[key] = ctx
    return ctx
