"""A real local OpenID Connect provider for the tests: mock-oauth2-server started by deploy/local/oidc.sh (its
jars come from Maven Central on the first run) in a state directory of the test session, on a free port. If it
cannot start, the tests that need it fail: they never skip."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from finops_runtime.access import Role
from finops_runtime.oidc import OidcSettings

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "local" / "oidc.sh"
API_AUDIENCE = "finops-api"
CONSOLE_CLIENT = "finops-console"
ROLE_MAP = {
    "finops-finance": Role.FINANCE,
    "finops-practitioner": Role.PRACTITIONER,
    "finops-engineering": Role.ENGINEERING,
}
"""How the groups of deploy/local/oidc/config.json's personas map to platform roles."""


@dataclass
class Provider:
    state_dir: Path
    port: int

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/finops"

    def _run(self, command: str) -> str:
        env = {**os.environ, "FINOPS_LOCAL_DIR": str(self.state_dir), "FINOPS_OIDC_MOCK_PORT": str(self.port)}
        done = subprocess.run(["bash", str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise AssertionError(f"deploy/local/oidc.sh {command} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done.stdout

    def start(self) -> None:
        exports = self._run("start")
        assert f"FINOPS_OIDC_ISSUER={self.issuer}" in exports, exports

    def stop(self) -> None:
        self._run("stop")

    def restart(self) -> None:
        """Stop and start on the same port: the provider signs with a newly generated key from then on."""
        self.stop()
        self.start()

    def settings(self, **overrides: object) -> OidcSettings:
        """Platform settings pointing at this provider, mapping the personas' groups to roles and teams."""
        fields: dict[str, object] = {
            "issuer": self.issuer,
            "audience": API_AUDIENCE,
            "client_id": CONSOLE_CLIENT,
            "client_secret": "console-secret",
            "role_claim": "groups",
            "role_map": ROLE_MAP,
            "teams_claim": "groups",
            "teams_prefix": "team:",
            "jwks_min_refresh_s": 0.5,
            **overrides,
        }
        return OidcSettings(**fields)

    async def token(self, persona: str) -> str:
        """An access token from the token endpoint (client_credentials; `scope` picks a persona of config.json)."""
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(
                f"{self.issuer}/token",
                data={"grant_type": "client_credentials", "scope": persona},
                auth=("finops-tests", "secret"),
            )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    async def jwks(self) -> dict:
        async with httpx.AsyncClient(timeout=10) as client:
            return (await client.get(f"{self.issuer}/jwks")).json()
