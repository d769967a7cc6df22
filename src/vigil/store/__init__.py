"""The storage room: SQLAlchemy models, Alembic migrations and the engine/session helpers.

SQLite (WAL) under `VIGIL_HOME` by default, PostgreSQL in production; both are migrated by
Alembic only. Other rooms take a `Session` and stay dialect-neutral. Importing this package
registers every table on `Base.metadata` (`models`: content and signals; `bank_models`: hash
banks; `match_models`: scan matches;
`service_models`: API tokens, users, upload events, actions and jobs; `review_models`:
review tasks, reveals, decisions, wellbeing and console sessions; `report_models`: reports,
their files and preservation requests; `vault_models`: the evidence vault and the audit log;
`legal_models`: the legal-process desk, its portal and the mail outbox).
"""

from vigil.store.bank_models import Bank, BankEntry, BankImport
from vigil.store.db import (
    Database,
    alembic_config,
    begin_immediate,
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    migrate,
    normalise_url,
    open_database,
    session_factory,
)
from vigil.store.legal_models import (
    AgencyDomain,
    LegalCheck,
    LegalRequest,
    LegalTarget,
    MailMessage,
    Officer,
    PortalSession,
    Production,
)
from vigil.store.match_models import Match
from vigil.store.models import Base, Content, ContentSignal, value_digest
from vigil.store.report_models import PreservationRequest, Report, ReportFile
from vigil.store.repository import (
    SignalInput,
    SignalLike,
    find_signals,
    get_content,
    record_hashes,
)
from vigil.store.review_models import (
    ReviewDecision,
    ReviewExposure,
    ReviewItem,
    ReviewReveal,
    ReviewTask,
    WebSession,
    WellbeingSettings,
)
from vigil.store.service_models import (
    ActionDelivery,
    ActionRule,
    ApiToken,
    AppUser,
    Job,
    UploadEvent,
)
from vigil.store.types import UTCDateTime, utcnow
from vigil.store.vault_models import (
    AuditEvent,
    AuditHead,
    LegalHold,
    VaultClock,
    VaultDestruction,
    VaultExport,
    VaultItem,
)

__all__ = [
    "ActionDelivery",
    "ActionRule",
    "AgencyDomain",
    "ApiToken",
    "AppUser",
    "AuditEvent",
    "AuditHead",
    "Bank",
    "BankEntry",
    "BankImport",
    "Base",
    "Content",
    "ContentSignal",
    "Database",
    "Job",
    "LegalCheck",
    "LegalHold",
    "LegalRequest",
    "LegalTarget",
    "MailMessage",
    "Match",
    "Officer",
    "PortalSession",
    "PreservationRequest",
    "Production",
    "Report",
    "ReportFile",
    "ReviewDecision",
    "ReviewExposure",
    "ReviewItem",
    "ReviewReveal",
    "ReviewTask",
    "SignalInput",
    "SignalLike",
    "UTCDateTime",
    "UploadEvent",
    "VaultClock",
    "VaultDestruction",
    "VaultExport",
    "VaultItem",
    "WebSession",
    "WellbeingSettings",
    "alembic_config",
    "begin_immediate",
    "current_revision",
    "downgrade",
    "find_signals",
    "get_content",
    "head_revision",
    "make_engine",
    "migrate",
    "normalise_url",
    "open_database",
    "record_hashes",
    "session_factory",
    "utcnow",
    "value_digest",
]
