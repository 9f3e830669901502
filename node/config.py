"""Node settings: one pydantic-settings class.

Sources, highest priority first: explicit arguments, environment variables prefixed
``KPNET_`` (e.g. ``KPNET_DATABASE_URL``), the data directory's ``config.toml``, and
defaults. The default database is a SQLite file inside the data directory.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from protocol import is_node_id

CONFIG_FILE = "config.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KPNET_", extra="ignore")

    data_dir: Path
    node_id: str = Field(description="This node's id, e.g. CM or CF-usaf")
    node_name: str = Field(description="Display name shown to peers")
    public_url: str = Field(description="URL peers use to reach this node")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data dir"
    )
    host: str = "127.0.0.1"
    port: int = 8100
    max_message_bytes: int = 256 * 1024
    clock_skew_seconds: int = 300
    min_free_disk_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="With SQLite: below this much free disk space the node reports itself "
        "not ready and refuses peers' messages (retryable) rather than fail to store them",
    )
    sender_enabled: bool = Field(default=True, description="Deliver the outbox from this process")
    delivery_poll_seconds: float = 1.0
    delivery_max_batch_bytes: int = Field(
        default=512 * 1024,
        ge=4096,
        description="Largest batch of envelopes sent to a peer in one request, in bytes "
        "(batches are sized to each peer's measured link up to this)",
    )
    delivery_probe_seconds: float = Field(
        default=3.0, gt=0, description="How often a peer that could not be reached is probed"
    )
    delivery_backoff_base_seconds: float = 2.0
    delivery_backoff_cap_seconds: float = 900.0
    delivery_lease_seconds: int = 60
    peer_rate_per_second: float = Field(default=50.0, description="Messages per second per peer")
    peer_rate_burst: float = Field(default=1000.0, description="Burst allowance per peer")
    refusal_rate_per_address: float = Field(
        default=1.0,
        gt=0,
        description="Refusals before authentication (junk, unknown senders, bad signatures) "
        "regained per second per client address; an address without one left gets 429",
    )
    refusal_burst_per_address: float = Field(
        default=30.0, ge=1, description="Refusals before authentication per address in a burst"
    )
    refusal_addresses_max: int = Field(
        default=10000,
        ge=1,
        description="Client addresses tracked for that limit; beyond, new ones share one bucket",
    )
    refusal_audit_interval_seconds: int = Field(
        default=60,
        ge=1,
        description="Refusals before authentication are audited as one aggregated entry "
        "per this interval (when there were any)",
    )
    kyc_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="How long a KYC check waits for peers' answers"
    )
    kyc_answer_min_score: int = Field(
        default=500,
        ge=1,
        le=1000,
        description="Weakest match (0-1000) this node reports in its answers to peers",
    )
    peer_allow_http: bool = Field(
        default=False,
        description="Let peers' endpoints be plain http:// URLs (loopback demos and tests; "
        "in production peers are reached over https://)",
    )
    peer_allowed_networks: str = Field(
        default="",
        description="Comma-separated address ranges (CIDR) peers' endpoints may be in "
        "although they are not public, e.g. 10.20.0.0/16 for peers over a private link",
    )
    kyc_queries_per_peer_per_day: int = Field(
        default=500,
        ge=1,
        description="KYC queries answered per peer and UTC day (a sharing agreement may set "
        "its own); beyond, a query is refused with quota_exceeded",
    )
    disclosure_requests_per_peer_per_day: int = Field(
        default=50,
        ge=1,
        description="Disclosure requests accepted per peer and UTC day (a sharing agreement "
        "may set its own); beyond, a request is refused with quota_exceeded",
    )
    metrics_token: str | None = Field(
        default=None, description="If set, /metrics requires this bearer token"
    )
    console_secure_cookies: bool = Field(
        default=False,
        description="Mark console cookies Secure even when the request "
        "reached the node over plain HTTP (behind a TLS proxy that does not say so)",
    )
    console_session_idle_minutes: int = Field(
        default=120, ge=1, description="Console sign-in ends after this long without use"
    )
    console_session_max_hours: int = Field(
        default=12, ge=1, description="Console sign-in ends this long after it began"
    )
    stream_check_seconds: float = Field(
        default=5.0,
        gt=0,
        le=30,
        description="How often the live alert streams look for new alerts and re-check their "
        "tokens or console sessions (they are also re-checked before each event)",
    )

    @field_validator("node_id")
    @classmethod
    def _check_node_id(cls, value: str) -> str:
        if not is_node_id(value):
            raise ValueError("node id must be a country code, optionally -tag (e.g. CM, CF-usaf)")
        return value

    @field_validator("peer_allowed_networks")
    @classmethod
    def _check_networks(cls, value: str) -> str:
        parse_networks(value)  # ValueError: not CIDR ranges
        return value

    @property
    def peer_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return parse_networks(self.peer_allowed_networks)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        data_dir = _data_dir_from(init_settings, env_settings)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if data_dir is not None and (data_dir / CONFIG_FILE).is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=data_dir / CONFIG_FILE))
        return tuple(sources)

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'kpnet.db'}"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def card_path(self) -> Path:
        return self.data_dir / "card.json"


def parse_networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated CIDR ranges (``10.20.0.0/16, fd00::/8``); raises ``ValueError``."""
    return tuple(
        ipaddress.ip_network(i.strip(), strict=True) for i in value.split(",") if i.strip()
    )


def _data_dir_from(*sources: PydanticBaseSettingsSource) -> Path | None:
    for source in sources:
        value: Any = source().get("data_dir")
        if value:
            return Path(value)
    return None


def load_settings(data_dir: Path | str | None = None, **overrides: Any) -> Settings:
    """Settings for the node in ``data_dir`` (or ``KPNET_DATA_DIR``)."""
    if data_dir is not None:
        overrides["data_dir"] = Path(data_dir)
    return Settings(**overrides)


def write_config(data_dir: Path, values: dict[str, Any]) -> Path:
    """Write ``config.toml`` (strings, numbers and booleans), readable by the owner only."""
    lines = ["# kpnet node configuration; environment variables KPNET_* override it."]
    for key, value in values.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int | float):
            lines.append(f"{key} = {value!r}")
        else:  # a JSON string is a TOML basic string (control characters escaped too)
            lines.append(f"{key} = {json.dumps(str(value), ensure_ascii=False)}")
    path = data_dir / CONFIG_FILE
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path
