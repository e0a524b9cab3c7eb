"""The one thing pyproject.toml cannot declare without an experimental table: the optional C
extension that batches UDP datagrams with recvmmsg/sendmmsg (weightless/udp/port.py). Without a
compiler the build goes on and the pure-Python socket loop serves."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "weightless.udp._udpbatch",
            sources=["weightless/udp/_udpbatch.c"],
            optional=True,
        )
    ]
)
