from tests.connectors.heartland.env import heartland_env, ticket_env

__all__ = ["heartland_env", "ticket_env"]
