"""The actions room (the "actioner"): per-bank webhook calls fired on a match, through a
durable outbox (docs/actions.md).

Public API (service functions take a SQLAlchemy `Session`, flush and never commit):

- rules: `create_rule`, `get_rule`, `list_rules`, `set_rule_enabled`, `delete_rule`;
- outbox: `enqueue_actions` (called by `vigil.pipeline.recording.record_matches`, in the
  match's own transaction);
- delivery: `deliver_due` -> `DeliveryRound`, `ActionWorker`, `signature`,
  `verify_signature`, `list_deliveries`, `retry_delivery`, `retry_dead`, `outbox_depth`,
  `failed_attempts`;
- views: `rule_json`, `delivery_json` (what the CLI's `--json` and the API show).

Actions never notify the uploader; a platform's own notice path does.
"""

from vigil.actions.delivery import (
    USER_AGENT,
    ActionWorker,
    Attempt,
    Claim,
    DeliveryNotFound,
    DeliveryRound,
    claim_due,
    deliver_due,
    failed_attempts,
    get_delivery,
    lease_for,
    list_deliveries,
    make_client,
    outbox_depth,
    retry_dead,
    retry_delivery,
    signature,
    verify_signature,
)
from vigil.actions.outbox import build_payload, enqueue_actions, event_key
from vigil.actions.rules import (
    NO_UPLOADER_NOTICE,
    ActionError,
    RuleExists,
    RuleNotFound,
    create_rule,
    delete_rule,
    get_rule,
    list_rules,
    set_rule_enabled,
)
from vigil.actions.views import delivery_json, rule_json

__all__ = [
    "NO_UPLOADER_NOTICE",
    "USER_AGENT",
    "ActionError",
    "ActionWorker",
    "Attempt",
    "Claim",
    "DeliveryNotFound",
    "DeliveryRound",
    "RuleExists",
    "RuleNotFound",
    "build_payload",
    "claim_due",
    "create_rule",
    "delete_rule",
    "deliver_due",
    "delivery_json",
    "enqueue_actions",
    "event_key",
    "failed_attempts",
    "get_delivery",
    "get_rule",
    "lease_for",
    "list_deliveries",
    "list_rules",
    "make_client",
    "outbox_depth",
    "retry_dead",
    "retry_delivery",
    "rule_json",
    "set_rule_enabled",
    "signature",
    "verify_signature",
]
