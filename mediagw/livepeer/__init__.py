"""The gateway's wire client for go-livepeer orchestrators (transcode spec §2-§10).

- ``profiles``: rendition profiles, presets, go-livepeer JSON profiles, ladders, the SegData field
- ``capabilities``: capability bits, job capabilities, the compatibility test
- ``segdata``: SegData, its signed "flatten" bytes and the ``Livepeer-Segment`` header
- ``tls``: trust-on-first-use certificate pins checked inside the TLS handshake
- ``grpc_wire`` / ``grpc_client``: gRPC unary calls over HTTP/2 with ``h2`` (no grpcio)
- ``rpc``: ``OrchestratorRPC`` (GetOrchestrator, EndTranscodingSession), address normalization
- ``segment``: ``SegmentClient`` (``POST /segment``, rendition downloads), result signatures
- ``errors``: this package's branch of the ``MediaGWError`` tree
- ``proto``: generated protobuf code (package ``net``)
"""
