"""IBM Quantum devices: fake devices of ``qiskit_ibm_runtime.fake_provider``, the Runtime service and credentials.

Credentials come from ``QISKIT_IBM_TOKEN`` / ``QISKIT_IBM_INSTANCE`` / ``QISKIT_IBM_CHANNEL`` or an
account saved with ``QiskitRuntimeService.save_account``; they are never written anywhere, and
errors from the service are passed on with any secret redacted.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from qml_imaging.extras import require

FAKE_PREFIX = "Fake"
IBM_DEVICE_PREFIX = "ibm_"
CHANNELS = ("ibm_quantum_platform", "ibm_cloud")
"""Values of ``QISKIT_IBM_CHANNEL`` that qiskit-ibm-runtime 0.45 accepts."""


def is_fake_device(device_name: str) -> bool:
    """Whether ``device_name`` names a fake device (local testing mode) rather than an IBM device."""
    return device_name.startswith(FAKE_PREFIX)


def fake_device(name: str):
    """A fake IBM device from ``qiskit_ibm_runtime.fake_provider`` by class name (``FakeManilaV2``).

    Raises ValueError naming the known fake devices when ``name`` is not one of them.
    """
    fake_provider = require("qiskit_ibm_runtime.fake_provider", f"fake device {name!r}")
    device_class = getattr(fake_provider, name, None)
    if device_class is None or not is_fake_device(name):
        raise ValueError(f"unknown fake device {name!r}; expected one of {list(fake_device_names())}")
    return device_class()


@functools.cache
def fake_device_names() -> tuple[str, ...]:
    """Names of the fake devices of ``qiskit_ibm_runtime.fake_provider`` (V2 interface)."""
    fake_provider = require("qiskit_ibm_runtime.fake_provider", "the fake IBM devices")
    FakeBackendV2 = fake_provider.fake_backend.FakeBackendV2

    return tuple(sorted(name for name, value in vars(fake_provider).items()
                  if isinstance(value, type) and issubclass(value, FakeBackendV2) and value is not FakeBackendV2))


def ibm_credentials_present() -> bool:
    """Whether IBM credentials are in the environment or saved on disk (the token is never read into logs)."""
    if os.environ.get("QISKIT_IBM_TOKEN"):
        return True
    saved = Path(os.environ.get("QISKIT_IBM_CONFIG", Path.home() / ".qiskit" / "qiskit-ibm.json"))
    return saved.is_file()


def redact_secrets(text: str) -> str:
    """``text`` with the IBM token and instance of the environment replaced by ``***``."""
    for name in ("QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE"):
        secret = os.environ.get(name)
        if secret:
            text = text.replace(secret, "***")
    return text


def runtime_service():
    """``QiskitRuntimeService`` from the environment or a saved account.

    Raises PermissionError without credentials, RuntimeError when the service cannot be opened
    (the service's own message kept, with secrets redacted).
    """
    if not ibm_credentials_present():
        raise PermissionError(
            "no IBM Quantum credentials: set QISKIT_IBM_TOKEN (and QISKIT_IBM_INSTANCE) in the environment, "
            "or save an account once with QiskitRuntimeService.save_account(...); "
            "to test locally use a fake device such as device_name: FakeManilaV2"
        )
    QiskitRuntimeService = require("qiskit_ibm_runtime", "IBM Quantum").QiskitRuntimeService

    options = {}
    if os.environ.get("QISKIT_IBM_TOKEN"):
        channel = os.environ.get("QISKIT_IBM_CHANNEL", CHANNELS[0])
        if channel not in CHANNELS:
            raise PermissionError(f"QISKIT_IBM_CHANNEL={channel!r} is not accepted by qiskit-ibm-runtime; "
                                  f"use one of {list(CHANNELS)}")
        options = {
            "channel": channel,
            "token": os.environ["QISKIT_IBM_TOKEN"],
            "instance": os.environ.get("QISKIT_IBM_INSTANCE"),
        }
    try:
        return QiskitRuntimeService(**options)
    except Exception as error:
        raise RuntimeError(f"could not open the IBM Quantum service: {type(error).__name__}: "
                           f"{redact_secrets(str(error))}; check the credentials, the instance and the "
                           "network") from None


def ibm_device(service, name: str):
    """The IBM device ``name`` of ``service``; ValueError with the names the account can use."""
    try:
        return service.backend(name)
    except Exception as error:
        known: list[str] | str
        try:
            known = sorted(device.name for device in service.backends())
        except Exception:
            known = "(could not list them)"
        raise ValueError(f"unknown IBM device {name!r} ({type(error).__name__}: {redact_secrets(str(error))}); "
                         f"this account has {known}") from None

