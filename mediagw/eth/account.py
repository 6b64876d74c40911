"""eth-account's ``Account`` (keystores), imported without its side effect on the process.

eth-account imports py_ecc, and py_ecc raises the interpreter's recursion limit to 100,000 when
it is first imported. At that limit ``json.loads`` of a deeply nested document (about 99 KB of
``[``) recurses in C until the thread's stack overflows, and the process dies of a
segmentation fault instead of raising ``RecursionError``. The gateway, the signer and the
reference orchestrator parse JSON from the network (HTTP bodies, webhook answers, orchestrator
events): one request must not be able to kill them. So the limit is put back after the import;
nothing mediagw uses of eth-account (keystore encryption and decryption) recurses deeply.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["account_api"]


def account_api() -> Any:
    """``eth_account.Account``; the recursion limit is the same after the call as before."""
    limit = sys.getrecursionlimit()
    try:
        from eth_account import Account
    finally:
        sys.setrecursionlimit(limit)
    return Account
