"""Generated protobuf code for the Livepeer wire messages (package ``net``).

Source: ``lp_rpc.proto`` beside this file. Regenerate with ``make proto``; never edit the
``*_pb2`` files by hand.
"""

from . import lp_rpc_pb2 as net

__all__ = ["net"]
