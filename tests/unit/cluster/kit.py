"""In-memory connections between workers' meshes, for the cluster's unit tests."""

from __future__ import annotations

from twisted.test.iosim import IOPump, connect, makeFakeClient, makeFakeServer

from weightless.cluster.ipc import Link, Mesh


def link(a: Mesh, b: Mesh) -> IOPump:
    """Connect ``a`` to ``b`` in memory, as if ``a`` had dialled ``b``; ``pump.flush()``
    delivers what either side sent."""
    mine, theirs = Link(a), Link(b)
    pump = connect(theirs, makeFakeServer(theirs), mine, makeFakeClient(mine))
    a.links[b.index] = mine
    b.links[a.index] = theirs
    return pump
