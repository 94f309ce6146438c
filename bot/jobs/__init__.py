"""The background-removal request, start to end: reserve → create → poll or webhook → download → deliver → settle.

Nothing here knows about Discord. The adapter turns an interaction into a `Request` and implements
`RequestEvents` as message edits; restart recovery and webhooks feed the ledger's records through the
same steps. The modules, in the order a request meets them:

- `model.py`: the request, its images and its results; `names.py`: the job's name at Magic Hour
- `events.py`: what a request tells its audience; `errors.py`, `outcomes.py`: why one ends, and what it cost
- `phases.py`: where each image stands in this process (queued → sending → confirmed → delivering → ended)
- `submit.py`: creating and waiting; `settle.py`: delivering and settling; `recovery.py`: restarts, held
  jobs found by webhooks, jobs past their deadline; `runner.py`: the coordinator
"""

from .core import image_job
from .errors import EXPECTED, JobCancelled, MemberBusy, ShuttingDown, StillRunning, Unexpected
from .events import JobEvents, RequestEvents, RequestEventsFactory
from .model import ImageInput, ImageJob, ImageOutcome, InputRefresher, JobResult, Request, RequestResult
from .names import job_key_in, job_name
from .outcomes import Charge, Failure, FailureKind, classify
from .phases import IllegalMove, Phase
from .runner import JobRunner

__all__ = [
    "EXPECTED",
    "Charge",
    "Failure",
    "FailureKind",
    "IllegalMove",
    "ImageInput",
    "ImageJob",
    "ImageOutcome",
    "InputRefresher",
    "JobCancelled",
    "JobEvents",
    "JobResult",
    "JobRunner",
    "MemberBusy",
    "Phase",
    "Request",
    "RequestEvents",
    "RequestEventsFactory",
    "RequestResult",
    "ShuttingDown",
    "StillRunning",
    "Unexpected",
    "classify",
    "image_job",
    "job_key_in",
    "job_name",
]
