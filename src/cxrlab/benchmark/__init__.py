"""The leaderboard (the benchmark stage): benchmarks on hidden test labels, submissions, their background
scoring and the rankings.

The seeds keep the test labels for "benchmarking machine learning algorithms" (VinDr-CXR data descriptor,
"Background & Summary"; its test set of 3,000 images was scored in the VinBigData challenge with the
``image_id,PredictionString`` submissions (see the docs, "File formats")). The rules, all enforced here:

- An admin creates a benchmark (metric ``kaggle|voc|coco``, IoU, class list, seed, public fraction, daily
  limit) and uploads its hidden labels in the ``annotations_test.csv`` layout. The file is kept under the
  workspace at ``benchmarks/<id>/gt-<sha256>.csv`` (mode 0600) and never served; its SHA-256 is in the row.
- The test images are split once, by the seed, into a public and a private part (:func:`split_parts`) and the
  split is stored; replacing the labels keeps the part of every image that stays and re-scores every submission.
- Any logged-in user (admin, annotator or reviewer; a researcher gets an annotator account, which shows no
  image without a task) uploads a submission. It is validated at once with
  :func:`cxrlab.evaluate.validate_submission`; a submission with errors is recorded as ``invalid`` with the
  validator's messages (its file is not kept) and refused, and does not count against the daily limit.
- The admin may also give the test images' sizes (``image_id,width,height``, :func:`upload_sizes`; the
  VinDr-CXR test labels have none, the DICOM headers' Columns and Rows do). They are kept beside the labels at
  ``benchmarks/<id>/image-sizes.csv`` (no catalog column: the file's presence is the setting) and, while they
  are there, the validator refuses boxes that leave the image by more than 1 px.
- At most ``daily_limit`` counted submissions (queued, scoring, scored or failed) per user and benchmark per
  UTC day.
- Scoring never runs in a request: a background worker (:mod:`cxrlab.benchmark.scoring`) claims ``queued``
  submissions with a conditional ``UPDATE`` (:func:`claim_next`), scores the public and private parts from one
  parse with :func:`cxrlab.evaluate.score_submission`, and stores both scores.
- Private scores and the private ranking leave the server only when the benchmark is closed
  (:func:`reveal_private`); the output schemas drop them before.
"""

from cxrlab.benchmark.benchmarks import (
    MAX_CSV_BYTES,
    MAX_UPLOAD_BYTES,
    LabelsReport,
    SizesReport,
    create_benchmark,
    get_benchmark,
    get_benchmark_by_name,
    image_parts,
    list_benchmarks,
    part_counts,
    read_upload,
    remove_sizes,
    reveal_private,
    set_state,
    split_parts,
    upload_labels,
    upload_sizes,
)
from cxrlab.benchmark.errors import DailyLimitError, InvalidUploadError, UploadTooLargeError
from cxrlab.benchmark.ranking import Board, BoardEntry, leaderboard
from cxrlab.benchmark.scoring import (
    LEASE,
    ScoringWorker,
    claim_next,
    requeue_stale,
    score_claimed,
    score_pending,
    worker_name,
)
from cxrlab.benchmark.submissions import get_submission, list_submissions, submissions_today, submit

__all__ = [
    "LEASE",
    "MAX_CSV_BYTES",
    "MAX_UPLOAD_BYTES",
    "Board",
    "BoardEntry",
    "DailyLimitError",
    "InvalidUploadError",
    "LabelsReport",
    "ScoringWorker",
    "SizesReport",
    "UploadTooLargeError",
    "claim_next",
    "create_benchmark",
    "get_benchmark",
    "get_benchmark_by_name",
    "get_submission",
    "image_parts",
    "leaderboard",
    "list_benchmarks",
    "list_submissions",
    "part_counts",
    "read_upload",
    "remove_sizes",
    "requeue_stale",
    "reveal_private",
    "score_claimed",
    "score_pending",
    "set_state",
    "split_parts",
    "submissions_today",
    "submit",
    "upload_labels",
    "upload_sizes",
    "worker_name",
]
