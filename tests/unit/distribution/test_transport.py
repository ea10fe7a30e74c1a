"""Registry timeouts: dockerd's defaults, overridable from the daemon's environment."""

import pytest

from dockyard.distribution import transport
from dockyard.distribution.config import RegistryConfig
from dockyard.errors import InvalidParameter


def test_timeouts_default_to_dockerd_s(monkeypatch):
    monkeypatch.delenv(transport.CONNECT_TIMEOUT_ENV, raising=False)
    monkeypatch.delenv(transport.READ_TIMEOUT_ENV, raising=False)
    t = transport.Transport(RegistryConfig())
    assert (t.connect_timeout, t.read_timeout) == (30.0, 60.0)


def test_timeouts_from_the_environment(monkeypatch):
    monkeypatch.setenv(transport.CONNECT_TIMEOUT_ENV, "1.5")
    monkeypatch.setenv(transport.READ_TIMEOUT_ENV, " 2 ")
    t = transport.Transport(RegistryConfig())
    assert (t.connect_timeout, t.read_timeout) == (1.5, 2.0)


@pytest.mark.parametrize("bad", ["0", "-1", "soon", "inf", "nan"])
def test_bad_timeouts_are_refused(monkeypatch, bad):
    monkeypatch.setenv(transport.READ_TIMEOUT_ENV, bad)
    with pytest.raises(InvalidParameter, match=transport.READ_TIMEOUT_ENV):
        transport.Transport(RegistryConfig())
