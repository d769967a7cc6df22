"""One settings object for the whole of Vigil, read from `VIGIL_*` environment variables.

Every limit that protects Vigil from hostile input lives here so operators can see and tune
them in one place (docs/configuration.md lists them all).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class MediaLimits(BaseModel):
    """Limits applied before and while decoding any file from outside.

    A plain model (not read from the environment) so worker processes receive exactly the
    limits their parent was configured with.
    """

    model_config = ConfigDict(frozen=True)

    max_file_bytes: int = Field(512 * 1024 * 1024, gt=0, description="Largest file read.")
    max_image_pixels: int = Field(
        100_000_000, gt=0, description="Largest image (width x height); guards decompression bombs."
    )
    max_video_seconds: float = Field(4 * 3600.0, gt=0, description="Longest video hashed.")
    max_video_frames: int = Field(500_000, gt=0, description="Most video frames decoded.")
    video_timeout_seconds: float = Field(
        600.0, gt=0, description="Wall-clock budget for decoding one video."
    )
    fast_decode: bool = Field(
        True,
        description=(
            "Decode large JPEGs' luma at a reduced DCT scale (short side >= 512) and compute"
            " PDQ's 64x64 downsample from it, within a few bits of the full decode; turn off"
            " for hashes identical to a full-resolution decode."
        ),
    )
    fast_decode_short_side: int = Field(
        512, ge=64, description="Short side kept by the fast decode."
    )


class Settings(BaseSettings, MediaLimits):
    """Everything configurable. Environment variables are `VIGIL_<FIELD>` in upper case."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="ignore")

    home: Path = Field(Path("vigil-data"), description="Data directory (database, evidence).")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default is SQLite at `$VIGIL_HOME/vigil.db`."
    )
    vpdq_seconds_per_hash: float = Field(
        1.0, ge=0, description="vPDQ sampling interval in seconds; 0 hashes every frame."
    )
    bank_import_max_bytes: int = Field(
        4 * 1024**3, gt=0, description="Largest hash-list file `vigil bank import` reads."
    )
    bank_import_max_line_chars: int = Field(
        65_536, gt=0, description="Longest line of a text hash list (CSV, TSV, plain)."
    )
    bank_import_max_value_chars: int = Field(
        8 * 1024**2,
        gt=0,
        description="Longest single value or field in an imported hash list (a vPDQ value).",
    )

    # --- The HTTP service (`vigil serve`) ------------------------------------------------
    api_rate_limit_per_minute: int = Field(
        60_000, gt=0, description="Requests a minute an API token may make, unless set on it."
    )
    api_token_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a worker trusts a checked token before asking the database again"
        " (the longest a revoked token keeps working).",
    )
    index_refresh_seconds: float = Field(
        2.0, gt=0, description="How often each API worker brings its match index up to date."
    )
    fetch_allowed_hosts: list[str] = Field(
        default_factory=list,
        description='Hosts `{"url": ...}` requests may fetch from (`example.com`,'
        " `*.cdn.example.com`); empty allows any host with a public address.",
    )
    fetch_allowed_networks: list[str] = Field(
        default_factory=list,
        description="Private networks (CIDR) that URL fetching may reach; none by default.",
    )
    fetch_max_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Largest body fetched from a URL."
    )
    fetch_timeout_seconds: float = Field(
        10.0, gt=0, description="Total time allowed to fetch one URL, redirects included."
    )
    fetch_max_redirects: int = Field(3, ge=0, description="Redirects followed when fetching.")
    webhook_secret: SecretStr | None = Field(
        None, description="Key that signs webhook calls (HMAC-SHA256) unless a rule names its own."
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one webhook call.")
    webhook_backoff_seconds: float = Field(
        2.0, gt=0, description="Delay before the first retry of a failed webhook; doubles each try."
    )
    webhook_backoff_max_seconds: float = Field(
        3600.0, gt=0, description="Longest delay between two tries of a webhook."
    )
    log_format: str = Field("json", pattern="^(json|text)$", description="`json` or `text` logs.")

    # --- Review -------------------------------------------------------------------------
    review_lease_minutes: float = Field(
        15.0,
        gt=0,
        description="How long a claimed review task stays a reviewer's without activity;"
        " then it returns to the queue.",
    )
    review_confirmed_bank: str = Field(
        "platform-confirmed",
        description="The platform's own bank: confirmed content's hashes are added to it (created"
        " on first use, verified, policy `review`).",
    )
    review_suppression_bank: str = Field(
        "platform-false-positives",
        description="The suppression bank a false-positive decision adds the content's hashes"
        " to (created on first use).",
    )

    # --- Reporting to the CyberTipline ---------------------------------------------------
    cybertip_environment: str = Field(
        "test",
        pattern="^(test|production)$",
        description="Where approved reports go: the clearinghouse's `test` or `production`"
        " service (each with its own URL and credentials).",
    )
    cybertip_test_url: str = Field(
        "https://exttest.cybertip.org/ispws/", description="Base URL of the test service."
    )
    cybertip_test_username: str | None = Field(None, description="Test service username.")
    cybertip_test_password: SecretStr | None = Field(None, description="Test service password.")
    cybertip_production_url: str = Field(
        "https://report.cybertip.org/ispws/", description="Base URL of the production service."
    )
    cybertip_production_username: str | None = Field(
        None, description="Production service username."
    )
    cybertip_production_password: SecretStr | None = Field(
        None, description="Production service password."
    )
    cybertip_timeout_seconds: float = Field(
        60.0, gt=0, description="Timeout of one call to the reporting service."
    )
    report_retry_seconds: float = Field(
        30.0,
        gt=0,
        description="Delay before retrying a submission after a server or network"
        " error; doubles each try, up to an hour.",
    )
    report_bundle_hours: float = Field(
        24.0,
        ge=0,
        description="A confirmation joins the same account's draft report from this many hours"
        " back instead of opening another.",
    )
    report_viral_accounts: int = Field(
        5,
        ge=2,
        description="Copies of one picture reported for this many accounts are marked `viral`.",
    )
    report_viral_days: float = Field(
        7.0, gt=0, description="The window in which `report_viral_accounts` are counted."
    )
    report_auto_approve_verified: bool = Field(
        False,
        description="Approve at once the reports built only from bank-policy confirmations"
        " (exact matches to verified banks); otherwise a `legal` or `lead` user approves.",
    )
    report_incident_type: str = Field(
        "Child Pornography (possession, manufacture, and distribution)",
        description="The `incidentType` of reports built from review decisions.",
    )
    report_platform: str | None = Field(
        None, description="The platform's name, as `incidentSummary/platform`."
    )
    report_person_first_name: str | None = Field(None, description="Reporting person's first name.")
    report_person_last_name: str | None = Field(None, description="Reporting person's last name.")
    report_person_email: str | None = Field(
        None, description="Reporting person's email (required to submit a report)."
    )
    report_person_phone: str | None = Field(None, description="Reporting person's phone.")
    report_contact_first_name: str | None = Field(None, description="Contact person's first name.")
    report_contact_last_name: str | None = Field(None, description="Contact person's last name.")
    report_contact_email: str | None = Field(None, description="Contact person's email.")
    report_contact_phone: str | None = Field(None, description="Contact person's phone.")
    report_company_template: str | None = Field(
        None,
        description="How to serve legal process, how long data is kept, the 24-hour emergency"
        " contact (`reporter/companyTemplate`).",
    )
    report_terms_of_service: str | None = Field(
        None, description="The platform's terms of service (text or URL)."
    )
    report_legal_url: str | None = Field(None, description="The platform's legal URL.")
    report_account_data_dir: Path | None = Field(
        None,
        description="A folder of `<account id>.json` files with what the platform knows of"
        " reported accounts (display name, profile URL, login addresses, device ids, disabled"
        " flags); see docs/reporting.md.",
    )

    account_data_synthetic: bool = Field(
        False,
        description="Make up clearly fake subscriber records for every account (the demo's"
        " stand-in for a platform's user service); never in production.",
    )

    # --- The web console (`/console`) ---------------------------------------------------
    console_session_hours: float = Field(
        12.0,
        gt=0,
        description="Longest a console sign-in lasts, however active; then the user signs in"
        " again.",
    )
    console_idle_minutes: float = Field(
        30.0, gt=0, description="A console session unused this long ends."
    )
    console_login_attempts_per_minute: int = Field(
        10, gt=0, description="Console sign-in attempts a minute allowed for one username."
    )
    console_login_ip_attempts_per_minute: int = Field(
        30, gt=0, description="Console sign-in attempts a minute allowed from one client address."
    )

    # --- The audit log -----------------------------------------------------------------
    audit_key_file: Path | None = Field(
        None,
        description="Ed25519 key (PEM) that signs audit checkpoints; default"
        " `$VIGIL_HOME/keys/audit-ed25519.key`, created on first use.",
    )
    audit_checkpoint_dir: Path | None = Field(
        None,
        description="Where audit checkpoints go; default `$VIGIL_HOME/audit/checkpoints`.",
    )
    audit_checkpoint_hours: float = Field(
        24.0,
        ge=0,
        description="How often the server writes a signed audit checkpoint; 0: never.",
    )

    # --- The evidence vault ---------------------------------------------------------------
    vault_storage: str = Field(
        "file",
        pattern="^(file|s3)$",
        description="Where the vault keeps its encrypted bytes: `file` ($VIGIL_HOME/vault) or"
        " `s3` (a bucket of S3 or an S3-compatible store).",
    )
    vault_s3_bucket: str | None = Field(
        None, description="The bucket of `vault_storage=s3` (credentials: AWS environment)."
    )
    vault_s3_prefix: str = Field(
        "vigil-vault/", description="Prefix of the vault's object keys in the bucket."
    )
    vault_s3_endpoint_url: str | None = Field(
        None, description="Endpoint of an S3-compatible store (MinIO, Ceph, ...); unset: AWS."
    )
    vault_export_approval_threshold: int = Field(
        10,
        ge=0,
        description="Vault items one person may export at once; more needs a second"
        " authorised person's approval.",
    )
    vault_sweep_hours: float = Field(
        24.0,
        gt=0,
        description="How often the server sweeps the vault (destroying items no clock keeps)."
        " It also takes submitted reports' preservation requests in within a minute.",
    )

    # --- The legal-process desk and its portal ------------------------------------------
    legal_due_emergency_hours: float = Field(
        1.0, gt=0, description="Time to answer an emergency disclosure request."
    )
    legal_due_preservation_hours: float = Field(
        24.0, gt=0, description="Time to carry out a 2703(f) preservation letter."
    )
    legal_due_nondisclosure_hours: float = Field(
        4.0, gt=0, description="Time to record a non-disclosure order against its accounts."
    )
    legal_due_destroy_hours: float = Field(
        24.0, gt=0, description="Time to carry out law enforcement's request to destroy."
    )
    legal_due_working_days: int = Field(
        5,
        gt=0,
        description="Working days (Monday to Friday) to answer any other request: subpoenas and"
        " warrants by their own date when that comes sooner, orders, foreign requests.",
    )
    legal_remind_fraction: float = Field(
        0.75,
        gt=0,
        lt=1,
        description="Share of a request's time gone when its assignee is reminded (overdue"
        " requests are escalated to legal leads).",
    )
    legal_broad_scope_targets: int = Field(
        10, gt=0, description="Accounts or items named above which a request is flagged broad."
    )
    legal_broad_scope_days: int = Field(
        366, gt=0, description="Records period above which a request is flagged broad."
    )
    legal_free_mail_domains: list[str] = Field(
        [
            "gmail.com",
            "googlemail.com",
            "outlook.com",
            "hotmail.com",
            "live.com",
            "yahoo.com",
            "aol.com",
            "icloud.com",
            "me.com",
            "proton.me",
            "protonmail.com",
            "gmx.com",
            "gmx.net",
            "mail.com",
            "yandex.com",
            "zoho.com",
            "tutanota.com",
        ],
        description="Mail domains anyone can register: a request from one is flagged.",
    )
    legal_notice_after_order: bool = Field(
        False,
        description="The platform's policy once no order forbids it and no CSAM report exists:"
        " whether a user may be told of legal process or action on their account.",
    )
    legal_download_hours: float = Field(
        72.0, gt=0, description="How long a production's single-use download link works."
    )
    legal_production_retention_days: int = Field(
        365, gt=0, description="How long the vault keeps a production package (its record)."
    )
    legal_custodian_name: str | None = Field(
        None, description="Custodian of records named in 902(11)/902(14) certifications."
    )
    legal_custodian_title: str = Field(
        "Custodian of Records", description="The custodian's title in certifications."
    )
    legal_organisation: str | None = Field(
        None, description="The platform's legal name in certifications (default: report_platform)."
    )
    portal_base_url: str = Field(
        "http://127.0.0.1:8000",
        description="The portal's public address, used in the links mailed to officers.",
    )
    portal_confirm_hours: float = Field(
        24.0, gt=0, description="How long an officer's one-time confirmation link works."
    )
    smtp_host: str | None = Field(
        None, description="SMTP server for the mail outbox; unset: mail waits in the outbox."
    )
    smtp_port: int = Field(587, gt=0, description="SMTP port (STARTTLS).")
    smtp_username: str | None = Field(None, description="SMTP username.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_from: str = Field("legal@vigil.invalid", description="Sender of Vigil's mail.")

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        """The database URL in force: the configured one or the embedded SQLite default."""
        return self.database_url or f"sqlite:///{self.home / 'vigil.db'}"

    @property
    def index_cache_dir(self) -> Path:
        """Where the match index is cached between runs (rebuilt when the banks change)."""
        return self.home / "index"

    @property
    def upload_dir(self) -> Path:
        """Where uploaded hash lists wait for their background import."""
        return self.home / "uploads"

    @property
    def media_limits(self) -> MediaLimits:
        """Only the media limits, a small picklable object for worker processes."""
        return MediaLimits(**self.model_dump(include=set(MediaLimits.model_fields)))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
