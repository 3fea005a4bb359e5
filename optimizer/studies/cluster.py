"""The dask.distributed cluster a study may run on: its address, TLS, and the connection.

A dask worker unpickles the tasks it is sent, and the client unpickles the results, and
unpickling runs code: use only a cluster you trust (docs/studies.md, section 2.1). Every
problem reaching it is told before anything is solved, as invalid input (a bad address,
TLS settings missing or given where they do not apply) or as the environment's (a
scheduler that refuses or does not answer, TLS files that cannot be used, dask not
installed).
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from typing import Any

from optimizer.errors import InstanceError, UnavailableError

PROBE_TIMEOUT_S = 5.0
"""How long to wait for a dask scheduler to accept a connection at all."""
SCHEDULER_TIMEOUT_S = 20.0
"""How long the dask client may take to connect once the scheduler accepts connections."""


@dataclass(frozen=True)
class Cluster:
    """A dask.distributed scheduler to run the solves on, and the TLS files to reach it.

    Without TLS files, a ``tls://`` address uses dask's own configuration
    (``distributed.comm.tls.ca-file``, ``.client.cert``, ``.client.key``)."""

    address: str
    tls_ca_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None

    @classmethod
    def of(
        cls,
        address: str | None,
        tls_ca_file: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
    ) -> Cluster | None:
        """The cluster the command line names, or None to solve on local processes."""
        if address is None:
            if tls_ca_file or tls_cert or tls_key:
                raise InstanceError(
                    "--tls-ca-file/--tls-cert/--tls-key",
                    "",
                    "TLS files given without --scheduler",
                    "give the tls:// address of the scheduler with --scheduler",
                )
            return None
        return cls(address, tls_ca_file, tls_cert, tls_key)


def connect(cluster: Cluster) -> Any:
    """A dask client connected to ``cluster``, or an error naming what stands in the way:
    a bad address or missing TLS settings (invalid input), an unreachable scheduler or
    unusable TLS files (environment). An address that refuses connections, or a TLS
    handshake that fails, is reported at once, not after the client's retries."""
    try:
        from distributed import Client
    except ImportError:
        raise UnavailableError(
            "--scheduler needs dask.distributed; install it with pip install 'rackopt[study]'"
        ) from None
    scheme, host, port = _address(cluster)
    security, context = _security(cluster) if scheme == "tls" else (None, None)
    where = f"the dask scheduler at {cluster.address}"
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as probe:
            if context is not None:
                context.wrap_socket(probe, server_hostname=host).close()
    except OSError as exc:  # refused, unreachable, timed out, or ssl.SSLError
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise UnavailableError(f"cannot reach {where}: {reason}") from None
    try:
        return Client(cluster.address, security=security, timeout=SCHEDULER_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UnavailableError(f"cannot connect to {where}: {exc}") from None


def _address(cluster: Cluster) -> tuple[str, str, int]:
    """Protocol, host and port of the scheduler; only tcp:// and tls:// are supported."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(cluster.address)
        host, port = parse_host_port(location, default_port=8786)
    except (ValueError, TypeError) as exc:
        raise InstanceError(
            "--scheduler",
            "",
            f"cannot read the address {cluster.address!r}: {exc}",
            "give tcp://HOST:PORT or tls://HOST:PORT",
        ) from None
    if scheme not in ("tcp", "tls"):
        raise InstanceError(
            "--scheduler", "", f"unsupported protocol {scheme!r}", "use tcp:// or tls://"
        )
    if scheme == "tcp" and (cluster.tls_ca_file or cluster.tls_cert or cluster.tls_key):
        raise InstanceError(
            "--scheduler",
            "",
            f"TLS files given for the unencrypted address {cluster.address}",
            "use the scheduler's tls:// address, or drop the TLS options",
        )
    return scheme, host, int(port)


def _security(cluster: Cluster) -> tuple[Any, ssl.SSLContext]:
    """The dask Security for a tls:// scheduler and its client TLS context, the files read
    now, so that a missing or unusable file is reported before anything is sent."""
    from distributed import Security

    given = {
        "tls_ca_file": cluster.tls_ca_file,
        "tls_client_cert": cluster.tls_cert,
        "tls_client_key": cluster.tls_key,
    }
    security = Security(require_encryption=True, **{k: v for k, v in given.items() if v})
    try:
        context = security.get_connection_args("client")["ssl_context"]
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise UnavailableError(
            f"cannot use the TLS files for the dask scheduler at {cluster.address}: {exc}"
        ) from None
    if context is None:
        raise InstanceError(
            "--scheduler",
            "",
            f"{cluster.address} is a tls:// address but no CA file and client certificate "
            "are given",
            "give --tls-ca-file and --tls-cert (and --tls-key if the key is separate)",
        )
    return security, context
