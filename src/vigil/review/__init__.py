"""The review room: matches, flags and escalations become tasks that people decide.

Public API (functions take a SQLAlchemy `Session`, flush but never commit):

- queue (`vigil.review.queue`): `queue_matches` (called by the pipeline as matches are
  recorded), `open_flag` with `Flag`, `list_queue`, `queue_counts`, `related_tasks`,
  `claim`, `claim_next`, `require_lease`, `get_task`; `Reviewer` is who acts;
- decisions (`vigil.review.decisions`): `record_reveal`, `end_reveal`, `full_reveals`,
  `confirm`, `false_positive`, `escalate`, `request_second_opinion`, `auto_confirm`,
  `task_history`; `FeedbackBanks` names the banks decisions feed;
- wellbeing (`vigil.review.wellbeing`): `Wellbeing`, `effective_settings`,
  `update_settings`, `count_screen_time`, `exposure_summary`;
- media (`vigil.review.media`): the blurred, greyscale renderings the console shows of the
  files `vigil.vault.media` keeps.
"""

from vigil.review.decisions import (
    FILE_ANNOTATIONS,
    FeedbackBanks,
    auto_confirm,
    confirm,
    end_reveal,
    escalate,
    false_positive,
    full_reveals,
    record_reveal,
    request_second_opinion,
    task_history,
)
from vigil.review.queue import (
    Flag,
    LeaseLost,
    QueueCount,
    Reviewer,
    ReviewError,
    TaskNotFound,
    claim,
    claim_next,
    get_task,
    is_exact,
    list_queue,
    open_flag,
    queue_counts,
    queue_matches,
    related_tasks,
    release,
    require_lease,
)
from vigil.review.wellbeing import (
    Wellbeing,
    count_screen_time,
    effective_settings,
    exposure_summary,
    organisation_defaults,
    update_settings,
    user_overrides,
)

__all__ = [
    "FILE_ANNOTATIONS",
    "FeedbackBanks",
    "Flag",
    "LeaseLost",
    "QueueCount",
    "ReviewError",
    "Reviewer",
    "TaskNotFound",
    "Wellbeing",
    "auto_confirm",
    "claim",
    "claim_next",
    "confirm",
    "count_screen_time",
    "effective_settings",
    "end_reveal",
    "escalate",
    "exposure_summary",
    "false_positive",
    "full_reveals",
    "get_task",
    "is_exact",
    "list_queue",
    "open_flag",
    "organisation_defaults",
    "queue_counts",
    "queue_matches",
    "record_reveal",
    "related_tasks",
    "release",
    "request_second_opinion",
    "require_lease",
    "task_history",
    "update_settings",
    "user_overrides",
]
