import pytest

from streamkit import BrokerStartError, devbroker


def test_dev_broker_starts_answers_and_stops_by_pid():
    b = devbroker.start()
    try:
        assert b.alive()
        assert devbroker.metadata_answers(b.host, b.port)
        with pytest.raises(BrokerStartError, match="already in use"):
            devbroker.start(port=b.port)
    finally:
        b.stop()
    assert not b.alive()
    assert not devbroker.metadata_answers(b.host, b.port, timeout=0.5)
