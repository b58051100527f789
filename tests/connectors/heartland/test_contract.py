"""The shared destination contract, run against the Heartland Retail sandbox in both posting modes."""

from __future__ import annotations

import pytest

from tests.connectors.contract_destination import DestinationContract
from tests.connectors.heartland.env import HeartlandEnv


class TestHeartlandSalesOrderContract(DestinationContract):
    @pytest.fixture
    def destination_env(self, heartland_env: HeartlandEnv) -> HeartlandEnv:
        return heartland_env


class TestHeartlandTicketContract(DestinationContract):
    @pytest.fixture
    def destination_env(self, ticket_env: HeartlandEnv) -> HeartlandEnv:
        return ticket_env
