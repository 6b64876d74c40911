"""Where the secrets of a test run come from, for ``secret_scan``: wrappers (test-only, installed
for the session) around every function that mints one or takes one in, recording its value,
and the formats a secret is recognisable by without having been seen minted.

Recorded: API keys (``keys.create_key``/``rotate``), stored streams' keys (``new_stream_key``),
playback JWTs and their signatures (``sign_token``), signing keys' private keys
(``create_signing_key``), ETH private keys (``LocalSigner``: gateways, signers, orchestrators),
test keystores' passwords (``mediatools.make_keystore``), webhooks' shared secrets, and every
secret setting of a gateway (``Settings``: -streamKeys, -metricsKey, -ethPassword,
-remoteSignerHeaders, -liveAIAuthApiKey, -liveAIHeartbeatHeaders, passwords in -storeUrl and
-redisUrl), including the gateways the tests start as processes (their flags are parsed here).
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

MIN_LENGTH = 12  # shorter values ("pw", "s3cret", "sk1") would match unrelated text: not scanned

# A secret in any of these shapes is a leak whether or not this process saw it minted (a key
# made by a gateway process, or a user's mistyped key that has the right form).
FORMATS: dict[str, re.Pattern[str]] = {
    "API key": re.compile(r"mgw_[0-9a-f]{16}_[A-Za-z0-9_-]{43}"),
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{20,}"),
    "private key PEM": re.compile(r"-----BEGIN (?:EC |RSA )?PRIVATE KEY-----"),
    # base64 of "-----BEGIN PRIVATE KEY" / "-----BEGIN EC PRIVATE KEY" (Studio's privateKey)
    "private key PEM (base64)": re.compile(r"LS0tLS1CRUdJTiB(?:QUklWQVRF|FQyBQUklWQVRF)"),
    "stream key": re.compile(r"\b[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}\b"),
}

_SECRET_SETTINGS = ("eth_password", "metrics_key", "live_ai_auth_api_key")
_SECRET_MAPS = ("remote_signer_headers", "live_ai_heartbeat_headers")
_URL_SETTINGS = ("store_url", "redis_url", "auth_webhook_url", "live_ai_auth_webhook_url")


@dataclass
class Secret:
    kind: str
    test: str  # the test running when it was recorded


class Registry:
    """Every secret recorded, by value; values under MIN_LENGTH are counted, not kept."""

    def __init__(self) -> None:
        self.secrets: dict[str, Secret] = {}
        self.too_short: set[str] = set()
        self.test = "(session)"

    def add(self, kind: str, value: object) -> None:
        if isinstance(value, bytes):
            if not value:
                return
            self.add(kind, value.hex())
            return
        if not isinstance(value, str) or not value.strip():
            return
        if len(value) < MIN_LENGTH:
            self.too_short.add(value)
        elif value not in self.secrets:
            self.secrets[value] = Secret(kind, self.test)

    def add_header(self, kind: str, value: str) -> None:
        self.add(kind, value)
        scheme, _, credential = value.partition(" ")  # "Bearer xyz": xyz alone too
        if credential and scheme.isalpha():
            self.add(kind, credential.strip())

    def add_url(self, kind: str, url: str) -> None:
        try:
            password = urlsplit(url).password
        except ValueError:
            return
        if password:
            self.add(kind, password)

    def add_settings(self, settings: Any) -> None:
        for name in _SECRET_SETTINGS:
            self.add(f"setting {name}", getattr(settings, name, ""))
        for key in getattr(settings, "stream_keys", {}) or {}:
            self.add("static stream key", key)
        for name in _SECRET_MAPS:
            for value in (getattr(settings, name, {}) or {}).values():
                self.add_header(f"setting {name}", value)
        for name in _URL_SETTINGS:
            self.add_url(f"password in {name}", getattr(settings, name, "") or "")


Patch = tuple[Any, str, Any]  # (owner, attribute, original)


def _replace_everywhere(original: Any, wrapper: Any, patches: list[Patch]) -> None:
    """Rebind ``original`` to ``wrapper`` in every loaded mediagw or test module holding it
    (``from x import f`` copies made before the wrappers went in)."""
    for name, module in list(sys.modules.items()):
        if module is None or not (name.startswith("mediagw") or "/tests/" in str(_file(module))):
            continue
        for attr, value in list(vars(module).items()):
            if value is original:
                patches.append((module, attr, original))
                setattr(module, attr, wrapper)


def _file(module: Any) -> str:
    return getattr(module, "__file__", "") or ""


def install(registry: Registry) -> Callable[[], None]:
    """Wrap the minting functions (before collection: test modules import the wrappers; copies
    imported earlier are rebound); return what undoes it."""
    from mediagw import config
    from mediagw.payments import signer
    from mediagw.platform import access, keys, streams, webhooks

    patches: list[Patch] = []
    wrappers: list[tuple[Any, Any]] = []

    def wrap(owner: Any, attr: str, make: Callable[[Any], Any]) -> None:
        original = getattr(owner, attr)
        wrapper = make(original)
        functools.update_wrapper(wrapper, original)
        wrapper.__secret_scan_original__ = original
        patches.append((owner, attr, original))
        setattr(owner, attr, wrapper)
        wrappers.append((original, wrapper))

    def api_key(original: Any) -> Any:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            row, text = await original(*args, **kwargs)
            registry.add("API key", text)
            return row, text

        return wrapper

    wrap(keys, "create_key", api_key)
    wrap(keys, "rotate", api_key)

    def stream_key(original: Any) -> Any:
        def wrapper() -> str:
            key: str = original()
            registry.add("stream key", key)
            return key

        return wrapper

    wrap(streams, "new_stream_key", stream_key)

    def token(original: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> str:
            jwt: str = original(*args, **kwargs)
            registry.add("playback JWT", jwt)
            registry.add("playback JWT signature", jwt.rsplit(".", 1)[-1])
            registry.add("signing private key", args[0] if args else kwargs.get("private_key"))
            return jwt

        return wrapper

    wrap(access, "sign_token", token)

    def signing_key(original: Any) -> Any:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            made = await original(*args, **kwargs)
            registry.add("signing private key", made.private_key)
            return made

        return wrapper

    wrap(access, "create_signing_key", signing_key)

    def hooks(original: Any) -> Any:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            hook = await original(*args, **kwargs)
            registry.add("webhook shared secret", getattr(hook, "shared_secret", None))
            return hook

        return wrapper

    wrap(webhooks.WebhookService, "create", hooks)
    wrap(webhooks.WebhookService, "update", hooks)

    def init(record: Callable[[Any], None]) -> Callable[[Any], Any]:
        def make(original: Any) -> Any:
            def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
                original(self, *args, **kwargs)
                record(self)

            return wrapper

        return make

    wrap(config.Settings, "__init__", init(registry.add_settings))
    wrap(signer.LocalSigner, "__init__", init(lambda s: registry.add("ETH private key", s._key)))

    try:
        import mediatools
    except ImportError:  # not under tests/
        mediatools = None
    if mediatools is not None:

        def keystore(original: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                path, password = original(*args, **kwargs)
                registry.add("keystore password", password)
                return path, password

            return wrapper

        wrap(mediatools, "make_keystore", keystore)

    for original, wrapper in wrappers:
        _replace_everywhere(original, wrapper, patches)

    def undo() -> None:
        for owner, attr, original in reversed(patches):
            setattr(owner, attr, original)
        patches.clear()

    return undo


def gateway_flags(argv: Iterable[str], env: Mapping[str, str] | None) -> None:
    """If ``argv`` runs ``mediagw run``, build its Settings here (which records its secrets)."""
    from mediagw.config import load_settings, parse_flags

    args = [str(a) for a in argv]
    if "run" not in args:
        return
    flags = args[args.index("run") + 1 :]
    try:
        cli = parse_flags(flags)
        cli.pop("config", None)
        load_settings(cli, env=dict(env) if env is not None else {})
    except (Exception, SystemExit):  # a test of bad flags: the gateway refuses them itself
        return
