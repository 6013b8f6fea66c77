"""The one settings model (env prefix ``WATCHKEEP_``); nothing else reads the environment."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from audit.levels import DEFAULT_POLICY, LevelRule
from audit.trail import TRAIL_NAME
from iam import parse_key_pair
from store.config import MiB, StoreConfig


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WATCHKEEP_", extra="ignore")

    data_dir: Path = Path("watchkeep-data")
    host: str = "127.0.0.1"
    port: int = Field(default=8766, ge=0, le=65535)
    rules_dir: Path | None = None

    # "WKIA…:wks_…": the root key pair to use instead of generating one on first start.
    admin_key: SecretStr | None = None
    # A Fernet key that encrypts stored secrets; else read from (or created in) the key file.
    master_key: SecretStr | None = None
    master_key_file: Path | None = None

    region: str = "local"
    account_id: str = Field(default="000000000000", pattern=r"^\d{12}$")

    fsync: bool = True
    max_event_bytes: int = Field(default=1 * MiB, gt=0)
    max_body_bytes: int = Field(default=16 * MiB, gt=0)
    max_batch_events: int = Field(default=100_000, gt=0)
    max_memtable_bytes: int = Field(default=256 * MiB, gt=0)
    max_wal_bytes: int = Field(default=1024 * MiB, gt=0)
    flush_interval_s: float = Field(default=10.0, gt=0)
    compact_min_segments: int = Field(default=8, ge=2)
    retention_interval_s: float = Field(default=600.0, gt=0)

    # Proxies whose X-Forwarded-For is believed (CIDRs); the audit trail's sourceIPAddress.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Audit levels (spec audit §2.6): rules, first match wins; floors always apply.
    audit_policy: list[LevelRule] = Field(default_factory=lambda: list(DEFAULT_POLICY))
    audit_segment_max_events: int = Field(default=10_000, gt=0)
    audit_segment_max_age_s: float = Field(default=300.0, gt=0)
    audit_lookup_window_days: int = Field(default=90, gt=0)
    audit_lookup_rate: float = Field(default=10.0, ge=0)  # per principal per second; 0: no limit
    # Failed authentications recorded one by one per source IP and minute (0: no limit).
    audit_auth_failures_per_minute: int = Field(default=100, ge=0)
    # The Ed25519 key that signs audit digests; generated beside the data when not set.
    audit_signing_key_file: Path | None = None
    audit_digest_interval_s: float = Field(default=300.0, gt=0)
    audit_checkpoint_every: int = Field(default=1000, gt=0)
    # Where every digest is also sent: "file:/other/volume/anchors.jsonl", "stdout", URLs.
    audit_anchors: list[str] = Field(default_factory=list)
    # Sealed audit segments are pruned after this many days, with a signed retention digest
    # (spec audit §4.2.7); under 365 days only with the explicit opt-in.
    audit_retention_days: int = Field(default=400, gt=0)
    audit_allow_short_retention: bool = False
    audit_retention_interval_s: float = Field(default=3600.0, gt=0)
    audit_self_verify_interval_s: float = Field(default=3600.0, gt=0)

    @field_validator("admin_key")
    @classmethod
    def _check_admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                parse_key_pair(value.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"WATCHKEEP_ADMIN_KEY: {exc}") from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"WATCHKEEP_TRUSTED_PROXIES: {cidr!r} is not a CIDR") from None
        return value

    @property
    def audit_dir(self) -> Path:
        return self.data_dir / "audit" / TRAIL_NAME

    @property
    def signing_key_file(self) -> Path:
        return self.audit_signing_key_file or self.data_dir / "audit-signing.key"

    @property
    def key_file(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"

    def store_config(self) -> StoreConfig:
        return StoreConfig(
            data_dir=self.data_dir,
            fsync=self.fsync,
            max_memtable_bytes=self.max_memtable_bytes,
            max_wal_bytes=self.max_wal_bytes,
            flush_interval_s=self.flush_interval_s,
            compact_min_segments=self.compact_min_segments,
        )
