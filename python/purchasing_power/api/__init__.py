"""The scoring API: a read-only HTTP service over the published BI copy.

``create_app(settings)`` builds the FastAPI app; ``serve(settings)`` runs it on uvicorn;
``add_key`` / ``revoke_key`` manage the API keys it accepts.
"""

from purchasing_power.api.app import create_app
from purchasing_power.api.keys import SCOPES, add_key, default_keys_file, read_keys, revoke_key
from purchasing_power.api.server import serve
from purchasing_power.api.settings import ApiSettings

__all__ = [
    "SCOPES",
    "ApiSettings",
    "add_key",
    "create_app",
    "default_keys_file",
    "read_keys",
    "revoke_key",
    "serve",
]
