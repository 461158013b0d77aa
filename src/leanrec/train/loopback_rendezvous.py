"""A ``torchrun`` rendezvous whose store listens on the loopback address only.

``torchrun --master_addr 127.0.0.1`` (its ``static`` rendezvous) starts the run's TCP store
with ``TCPStore(master_addr, port, is_master=True)``, and a TCP store server listens on every
interface (``*:port``), whatever ``master_addr`` says: the address only tells the clients where
to connect. This backend is ``static`` with one change: the server is handed a socket already
bound to ``(master_addr, port)`` (``TCPStore(master_listen_fd=...)``), so a run on one machine
opens no port on any other interface. Gloo's own sockets follow ``GLOO_SOCKET_IFNAME``, which
:func:`leanrec.train.distributed.data_parallel` sets to the loopback interface for a loopback
``MASTER_ADDR``.

Registered with ``torchrun`` through the ``torchrun.handlers`` entry point of the package::

    torchrun --nproc_per_node 2 --rdzv-backend leanrec-loopback \\
        --rdzv-endpoint 127.0.0.1:29500 $(which leanrec) train --dataset ml-100k --model mf

The rank of this node is ``--rdzv-conf rank=R`` (default 0: one machine). On several machines,
use ``torchrun``'s own ``static`` or ``c10d`` rendezvous with a reachable address.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any


def bind_listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` and listening; raises ``OSError`` when the port is
    taken or ``host`` is not an address of this machine."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    return listener


def create_handler(params: Any) -> Any:
    """The rendezvous handler for ``params`` (``torch.distributed.elastic``'s
    ``RendezvousParameters``): ``torchrun``'s static rendezvous with a loopback-bound store."""
    from torch.distributed import TCPStore
    from torch.distributed.elastic.rendezvous.static_tcp_rendezvous import (
        StaticTCPRendezvous,
        _default_timeout_seconds,
    )
    from torch.distributed.elastic.rendezvous.utils import parse_rendezvous_endpoint

    class LoopbackRendezvous(StaticTCPRendezvous):
        """``StaticTCPRendezvous`` whose store server listens on ``master_addr`` only."""

        def get_backend(self) -> str:
            return "leanrec-loopback"

        def next_rendezvous(self) -> Any:
            if self._store is None:
                is_master = self.rank == 0
                listener = bind_listener(self.master_addr, self.master_port) if is_master else None
                self._store = TCPStore(
                    self.master_addr,
                    self.master_port,
                    self.world_size,
                    is_master,
                    self.timeout,
                    multi_tenant=True,
                    master_listen_fd=None if listener is None else listener.detach(),
                )
            return super().next_rendezvous()

    endpoint = params.endpoint.strip()
    host, port = parse_rendezvous_endpoint(endpoint, -1)
    if not endpoint or port == -1:
        raise ValueError(
            "leanrec-loopback rendezvous: give --rdzv-endpoint HOST:PORT (e.g. 127.0.0.1:29500)"
        )
    timeout = int(params.config.get("timeout", _default_timeout_seconds))
    rank = int(params.config.get("rank", 0))
    return LoopbackRendezvous(host, port, rank, params.max_nodes, params.run_id, timeout)


def handler_creator() -> Callable[[Any], Any]:
    """The ``torchrun.handlers`` entry point: ``torchrun`` calls it once and registers what it
    returns as the ``leanrec-loopback`` backend."""
    return create_handler


__all__ = ["bind_listener", "create_handler", "handler_creator"]
