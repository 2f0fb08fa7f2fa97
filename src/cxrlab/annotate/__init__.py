"""The labeling stage as a library: projects, assignment, tasks, readings and their QC rules, the two-reviewer
review, users and the images each user may see.

No web framework here: the CLI (``cxrlab annotate``, ``cxrlab users``), the demo and the web shell
(:mod:`cxrlab.web`) all call these modules. Each module is one concept:

- :mod:`~cxrlab.annotate.projects` — a project and its label schema;
- :mod:`~cxrlab.annotate.assignment` — readers per image, reviewers, the test fraction;
- :mod:`~cxrlab.annotate.tasks` — a reader's queue, drafts (optimistic versions), submit, "unusable";
- :mod:`~cxrlab.annotate.history` — a reader's submitted reads, reopening one, the freeze rule;
- :mod:`~cxrlab.annotate.gold` — gold-standard images and tasks (reader QA), blinded to readers;
- :mod:`~cxrlab.annotate.readings` — submitted reads and the QC rules every read passes;
- :mod:`~cxrlab.annotate.reviews` — the two-reviewer review of the test set;
- :mod:`~cxrlab.annotate.marks` — boxes and labels as edited, and their audit rows;
- :mod:`~cxrlab.annotate.users` — accounts, passwords, sessions and the login limiter;
- :mod:`~cxrlab.annotate.images` — which images a user may see (blinding);
- :mod:`~cxrlab.annotate.progress` — progress per split and reader;
- :mod:`~cxrlab.annotate.reasons` — the codes an image is set aside with;
- :mod:`~cxrlab.annotate.writes` — the row-level write helpers (locks, versions, events).
"""
