"""The Open Inference Protocol over gRPC, for ``steward serve --grpc-port`` (the ``grpc`` extra).

``open_inference.proto`` is the protocol's service, written from its public specification;
``open_inference_pb2.py``, ``.pyi`` and ``open_inference_pb2_grpc.py`` are generated from it by
``python -m steward.web.grpc.regenerate`` and committed. ``server.py`` serves it. Importing this
package imports nothing of grpcio, so Steward runs without the extra; ``server`` needs it.
"""

__all__: list[str] = []
