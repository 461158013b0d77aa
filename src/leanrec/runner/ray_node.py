"""``ray`` that keeps a node on 127.0.0.1: a multi-node Ray cluster bound to the loopback interface.

python -m leanrec.runner.ray_node start --head --node-ip-address=127.0.0.1 --port=6380 ...
python -m leanrec.runner.ray_node start --address=127.0.0.1:6380 --node-ip-address=127.0.0.1 ...

On Linux, Ray treats every ``ray start`` as a node of a possible multi-machine cluster and
replaces a node address or cluster address of ``127.0.0.1``/``localhost`` by the machine's
network address (``ray._private.services.resolve_ip_for_localhost``); its GCS and raylet
servers then listen on every interface. Its single-machine mode keeps 127.0.0.1 but refuses a
second node. This command is Ray's own command line with that one function made to keep a
loopback address as it is: the nodes announce 127.0.0.1, and Ray's servers, which listen on
127.0.0.1 alone when that is the node's address, never open a port on another interface.

A driver of such a cluster connects through :func:`~leanrec.runner.executors.init_ray`, which
keeps the address the same way while it connects. Nothing else of Ray is changed; a cluster
spanning several machines uses plain ``ray start``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any


def _keep_loopback(resolve: Any) -> Any:
    """``resolve_ip_for_localhost`` that returns a loopback host unchanged (``localhost`` and
    ``::1`` as ``127.0.0.1``) and passes any other host to Ray's own ``resolve``."""
    from ray._private import services

    def keep(host: str) -> str:
        if host and services.is_localhost(host):
            return "127.0.0.1"
        result: str = resolve(host)
        return result

    keep.keeps_loopback = True  # type: ignore[attr-defined]
    return keep


@contextlib.contextmanager
def loopback_addresses_kept() -> Iterator[None]:
    """While inside, Ray keeps ``127.0.0.1``/``localhost`` as a node or cluster address instead
    of replacing it by the machine's network address; restored on exit."""
    from ray._private import services

    saved = services.resolve_ip_for_localhost
    if not getattr(saved, "keeps_loopback", False):
        services.resolve_ip_for_localhost = _keep_loopback(saved)
    try:
        yield
    finally:
        services.resolve_ip_for_localhost = saved


def main(argv: list[str] | None = None) -> int:
    """Run Ray's command line (``ray ARGS``) with loopback addresses kept."""
    from ray.scripts.scripts import main as ray_main

    sys.argv = ["ray", *(sys.argv[1:] if argv is None else argv)]
    with loopback_addresses_kept():
        try:
            ray_main()
        except SystemExit as stop:
            return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
