"""Ethereum helpers: the ground floor that the wire protocol, payments and the reference
orchestrator sign and verify with. Nothing of mediagw is imported here except ``mediagw.errors``.

- ``crypto``: keccak256, personal-sign of a 32-byte digest, recovery, EIP-55 checksums
- ``abi``: the static ABI pieces of the contract reads (selectors, words)
- ``signer``: the ``Signer`` seam (sign a 32-byte digest; a local key or a remote signer)
"""
