"""The shared destination and POS contracts, run against the Heartland Retail sandbox in both posting modes."""

from __future__ import annotations

import pytest

from tests.connectors.contract_destination import DestinationContract
from tests.connectors.contract_pos import PosContract
from tests.connectors.heartland.env import HeartlandEnv


class TestHeartlandSalesOrderContract(DestinationContract):
    @pytest.fixture
    def destination_env(self, heartland_env: HeartlandEnv) -> HeartlandEnv:
        return heartland_env


class TestHeartlandTicketContract(DestinationContract):
    @pytest.fixture
    def destination_env(self, ticket_env: HeartlandEnv) -> HeartlandEnv:
        return ticket_env


class TestHeartlandSalesOrderPosContract(PosContract):
    @pytest.fixture
    def pos_env(self, heartland_env: HeartlandEnv) -> HeartlandEnv:
        return heartland_env

    def unknown_document_id(self) -> str:
        return "order:999999999"


class TestHeartlandTicketPosContract(PosContract):
    @pytest.fixture
    def pos_env(self, ticket_env: HeartlandEnv) -> HeartlandEnv:
        return ticket_env

    def unknown_document_id(self) -> str:
        return "ticket:999999999"
