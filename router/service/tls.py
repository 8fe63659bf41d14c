"""TLS for the gRPC server and its clients, with certificates re-read when their files change.

The server's credentials are gRPC's dynamic ones: before each new connection's handshake
gRPC asks :class:`_Reloader` for the configuration, which re-reads the certificate, key and
client CA when one of their files changed (a renewed certificate is served without a
restart; connections already open keep theirs). Clients (``router`` commands, the HTTP
gateway) verify the server against a CA file and may present a client certificate.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import grpc

from router.service.config import TlsSettings

logger = logging.getLogger(__name__)


class _Reloader:
    """gRPC's certificate-configuration fetcher: a new configuration when a file changed."""

    def __init__(self, settings: TlsSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._seen = self._stamp()

    def _stamp(self) -> tuple[tuple[int, int], ...]:
        return tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in self._settings.files())

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        """The configuration as the files are now; ValueError unless the key is the cert's."""
        s = self._settings
        key, cert = s.key.read_bytes(), s.cert.read_bytes()
        _check_pair(cert, key)
        return grpc.ssl_server_certificate_configuration(
            [(key, cert)],
            root_certificates=None if s.client_ca is None else s.client_ca.read_bytes(),
        )

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        try:
            with self._lock:
                stamp = self._stamp()
                if stamp == self._seen:
                    return None
                fresh = self.configuration()
                self._seen = stamp
        except (OSError, ValueError) as exc:  # mid-rotation: the previous pair stays, and
            # the files are read again at the next connection (``_seen`` is not moved)
            logger.warning("TLS files not reloaded (%s); the previous ones stay", exc)
            return None
        logger.info("TLS certificate files changed: reloaded")
        return fresh


def _check_pair(cert_pem: bytes, key_pem: bytes) -> None:
    """ValueError unless both parse and the key is the certificate's (a half-rotated pair)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = serialization.Encoding.PEM
    if cert.public_key().public_bytes(pem, public) != key.public_key().public_bytes(pem, public):
        raise ValueError("the key is not the certificate's")


def server_credentials(settings: TlsSettings) -> grpc.ServerCredentials:
    """Dynamic server credentials that follow the files of ``settings``."""
    reloader = _Reloader(settings)
    return grpc.dynamic_ssl_server_credentials(
        reloader.configuration(),
        reloader,  # type: ignore[arg-type]
        require_client_authentication=settings.client_ca is not None,
    )


def channel_credentials(
    ca: Path | None, cert: Path | None = None, key: Path | None = None
) -> grpc.ChannelCredentials:
    """Client credentials: trust ``ca`` (None: the system roots), present ``cert``/``key``."""
    return grpc.ssl_channel_credentials(
        root_certificates=None if ca is None else ca.read_bytes(),
        private_key=None if key is None else key.read_bytes(),
        certificate_chain=None if cert is None else cert.read_bytes(),
    )
