"""Vocabularies: what each label is called in a report, and the context rules (negation, uncertainty), as data.

One YAML file per label schema ships in ``cxrlab/reports/vocabularies/`` (``nih14.yaml``,
``vindr-cxr-global.yaml``, ``vindr-cxr-local.yaml``) beside ``context.yaml``, the NegEx/ConText trigger lists. A
site extends either with its own YAML file of the same shape (:func:`load_vocabulary`, ``--vocabulary``): terms
are added to a label, a new label becomes a new column, triggers are added to the context rules.

The file format (every key but ``labels`` optional)::

    schema: nih14
    labels:
      Effusion:
        terms: [pleural effusion(s), effusion(s), pleural fluid]   # "(...)": an optional suffix
        near:                                # two words close together in one clause, in either order
          - anchors: [costophrenic angle]
            modifiers: [fluid]
            window: 3                        # at most this many words between them
            order: any                       # or anchor-first, modifier-first
        patterns: ['\\bhydrothora(x|ces)\\b']  # Python regular expressions, matched on lower-case text
        exclude: [pericardial effusion]      # a match overlapping one of these is no mention
        use: [vindr-cxr-local/Pleural effusion]   # also take the terms of another schema's label
    context:
      negated: {forward: [...], backward: [...]}
      uncertain: {forward: [...], backward: [...], both: [...]}
      hypothetical: {forward: [...], backward: [...]}
      pseudo: [...]        # look like triggers but are not ("no change")
      terminate: [...]     # end a trigger's scope ("but", ";")
      window: {forward: 15, backward: 6}
    no_finding:            # optional extra column: 1 when nothing is found
      label: No finding
      also: [vindr-cxr-local]   # labels of other schemas that must be absent too

Terms are matched as whole words, case-insensitively; a hyphen counts as a space ("mass-like" = "mass like").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cxrlab.reports.exceptions import VocabularyError
from cxrlab.reports.phrases import expand_term

__all__ = [
    "CATEGORIES",
    "ContextRules",
    "LabelVocabulary",
    "Near",
    "Vocabulary",
    "builtin_schemas",
    "load_vocabulary",
    "release_schema_name",
]

#: Context categories: what a trigger says about the findings in its scope (ConText, Harkema et al. 2009).
CATEGORIES = ("negated", "uncertain", "hypothetical")
_DIRECTIONS = ("forward", "backward", "both")
_PACKAGE = "cxrlab.reports.vocabularies"


@dataclass(frozen=True)
class Near:
    """Two lists of words that name a finding when they occur close together in one clause ("heart ... enlarged").

    Attributes
    ----------
    anchors, modifiers : tuple of str
        Terms (same syntax as :attr:`LabelVocabulary.terms`).
    window : int
        Most words between an anchor and a modifier.
    order : str
        ``any``, ``anchor-first`` ("heart ... enlarged") or ``modifier-first`` ("enlarged ... heart").
    """

    anchors: tuple[str, ...]
    modifiers: tuple[str, ...]
    window: int = 4
    order: str = "any"


@dataclass(frozen=True)
class LabelVocabulary:
    """How one label is named in reports.

    Attributes
    ----------
    name : str
        The label as the schema spells it (the CSV column).
    terms : tuple of str
        Words and phrases naming the finding; ``(s)``-style parentheses mark an optional suffix.
    near : tuple of Near
        Pairs of words that name it together.
    patterns : tuple of str
        Regular expressions, for what terms cannot say.
    exclude : tuple of str
        Terms that look like a mention but are not (``subcutaneous emphysema`` is no Emphysema).
    """

    name: str
    terms: tuple[str, ...] = ()
    near: tuple[Near, ...] = ()
    patterns: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContextRules:
    """NegEx/ConText trigger lists (Chapman et al. 2001; Harkema et al. 2009).

    Attributes
    ----------
    triggers : dict of str to tuple of (str, str)
        Phrase -> (category, direction); category in :data:`CATEGORIES`, direction ``forward`` (the finding
        follows: "no effusion"), ``backward`` (it precedes: "effusion has resolved") or ``both``.
    pseudo : tuple of str
        Phrases containing a trigger that are no trigger ("no change", "not only").
    terminate : tuple of str
        Phrases and punctuation that end a scope ("but", "however", ";").
    forward_window, backward_window : int
        Most words between a trigger and the finding it modifies.
    """

    triggers: dict[str, tuple[str, str]] = field(default_factory=dict)
    pseudo: tuple[str, ...] = ()
    terminate: tuple[str, ...] = ()
    forward_window: int = 15
    backward_window: int = 6


@dataclass(frozen=True)
class Vocabulary:
    """The labels of one schema (in column order) and the context rules.

    Attributes
    ----------
    no_finding : str or None
        Name of a "no finding" column: 1 when no label (nor any of :attr:`hidden`) is positive or uncertain.
    hidden : dict of str to LabelVocabulary
        Labels looked for only to decide :attr:`no_finding` (VinDr-CXR's global "No finding" also needs the local
        findings absent); they are no output column.
    """

    schema: str
    labels: dict[str, LabelVocabulary]
    context: ContextRules
    no_finding: str | None = None
    hidden: dict[str, LabelVocabulary] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Output columns in order: the labels, then the no-finding column if any."""
        return [*self.labels, *([self.no_finding] if self.no_finding else [])]


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise VocabularyError(f"{where}: expected a list of non-empty strings")
    return tuple(v.strip() for v in value)


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``no``, ``yes``, ``on``, ``off`` as booleans; in a vocabulary "no" is a word, so only
    ``true``/``false`` are booleans here (as in YAML 1.2)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def _read_yaml(source: str, text: str) -> dict:
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise VocabularyError(f"{source}{line}: not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise VocabularyError(f"{source}: expected a mapping with 'labels' and/or 'context'")
    unknown = set(data) - {"schema", "description", "labels", "context", "no_finding"}
    if unknown:
        raise VocabularyError(f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    return data


def _builtin_text(name: str) -> str:
    try:
        return resources.files(_PACKAGE).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VocabularyError(
            f"no built-in report vocabulary {name!r} (known: {', '.join(builtin_schemas())})"
        ) from None


def builtin_schemas() -> list[str]:
    """Names of the vocabularies shipped with cxrlab."""
    names = [p.name[:-5] for p in resources.files(_PACKAGE).iterdir() if p.name.endswith(".yaml")]
    return sorted(n for n in names if n != "context")


def release_schema_name(vocabulary: str) -> str:
    """The label schema (:func:`cxrlab.schemas.get_schema`) whose columns a vocabulary's labels fill in a release:
    ``nih14`` for ``nih14``; ``vindr-cxr`` for ``vindr-cxr-global`` and ``vindr-cxr-local`` (each fills part of
    it).

    Raises
    ------
    VocabularyError
        No label schema has the vocabulary's labels.
    """
    from cxrlab.schemas import get_schema

    for name in (vocabulary, vocabulary.removesuffix("-global").removesuffix("-local")):
        try:
            get_schema(name)
        except KeyError:
            continue
        return name
    raise VocabularyError(f"report vocabulary {vocabulary!r} fills no label schema of a release")


def _parse_near(value: Any, where: str) -> tuple[Near, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise VocabularyError(f"{where}: 'near' must be a list of {{anchors, modifiers, window}}")
    out = []
    for i, item in enumerate(value):
        w = f"{where}.near[{i}]"
        if not isinstance(item, dict) or set(item) - {"anchors", "modifiers", "window", "order"}:
            raise VocabularyError(f"{w}: expected keys anchors, modifiers and optionally window, order")
        order = item.get("order", "any")
        if order not in ("any", "anchor-first", "modifier-first"):
            raise VocabularyError(f"{w}: order must be any, anchor-first or modifier-first")
        window = item.get("window", 4)
        if not isinstance(window, int) or isinstance(window, bool) or not 0 <= window <= 20:
            raise VocabularyError(f"{w}: window must be a whole number from 0 to 20")
        anchors, modifiers = _strings(item.get("anchors"), f"{w}.anchors"), _strings(item.get("modifiers"),
                                                                                    f"{w}.modifiers")
        if not anchors or not modifiers:
            raise VocabularyError(f"{w}: anchors and modifiers must both be given")
        out.append(Near(anchors, modifiers, window, order))
    return tuple(out)


def _merge_labels(
    labels: dict[str, LabelVocabulary], data: Mapping, source: str, *, resolving: tuple[str, ...]
) -> None:
    """Add the ``labels`` mapping of one YAML file to *labels* (in place)."""
    if not isinstance(data, dict):
        raise VocabularyError(f"{source}: 'labels' must be a mapping of label name to its terms")
    for name, spec in data.items():
        where = f"{source}: label {name!r}"
        if not isinstance(name, str) or not name.strip():
            raise VocabularyError(f"{source}: a label name must be a non-empty string")
        spec = spec or {}
        if not isinstance(spec, dict):
            raise VocabularyError(f"{where}: expected a mapping (terms, near, patterns, exclude, use)")
        unknown = set(spec) - {"terms", "near", "patterns", "exclude", "use"}
        if unknown:
            raise VocabularyError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        for p in _strings(spec.get("patterns"), f"{where}.patterns"):
            try:
                re.compile(p)
            except re.error as exc:
                raise VocabularyError(f"{where}: bad pattern ({exc})") from None
        current = labels.get(name, LabelVocabulary(name))
        for ref in _strings(spec.get("use"), f"{where}.use"):
            current = _add(current, _use(ref, where, resolving=resolving))
        current = _add(current, LabelVocabulary(
            name,
            terms=_strings(spec.get("terms"), f"{where}.terms"),
            near=_parse_near(spec.get("near"), where),
            patterns=_strings(spec.get("patterns"), f"{where}.patterns"),
            exclude=_strings(spec.get("exclude"), f"{where}.exclude"),
        ))
        for term in (*current.terms, *current.exclude, *(t for n in current.near for t in n.anchors + n.modifiers)):
            try:
                expand_term(term)
            except ValueError:
                raise VocabularyError(f"{where}: term {term!r} has no word") from None
        labels[name] = current


def _add(a: LabelVocabulary, b: LabelVocabulary) -> LabelVocabulary:
    return replace(
        a,
        terms=tuple(dict.fromkeys(a.terms + b.terms)),
        near=a.near + tuple(n for n in b.near if n not in a.near),
        patterns=tuple(dict.fromkeys(a.patterns + b.patterns)),
        exclude=tuple(dict.fromkeys(a.exclude + b.exclude)),
    )


def _use(ref: str, where: str, *, resolving: tuple[str, ...]) -> LabelVocabulary:
    """The label *ref* (``schema/Label``) of a built-in vocabulary."""
    schema, sep, label = ref.partition("/")
    if not sep:
        raise VocabularyError(f"{where}: 'use' entries are written schema/Label")
    if schema in resolving:
        raise VocabularyError(f"{where}: 'use' loops back to {schema!r}")
    other = _builtin_labels(schema, resolving=(*resolving, schema))
    if label not in other:
        raise VocabularyError(f"{where}: {ref!r}: no such label in {schema!r}")
    return other[label]


def _builtin_labels(schema: str, *, resolving: tuple[str, ...]) -> dict[str, LabelVocabulary]:
    data = _read_yaml(f"{schema}.yaml", _builtin_text(schema))
    labels: dict[str, LabelVocabulary] = {}
    _merge_labels(labels, data.get("labels") or {}, f"{schema}.yaml", resolving=resolving)
    return labels


def _merge_context(rules: ContextRules, data: Any, source: str) -> ContextRules:
    if not isinstance(data, dict):
        raise VocabularyError(f"{source}: 'context' must be a mapping")
    unknown = set(data) - {*CATEGORIES, "pseudo", "terminate", "window"}
    if unknown:
        raise VocabularyError(f"{source}: context: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    triggers = dict(rules.triggers)
    for category in CATEGORIES:
        block = data.get(category) or {}
        if not isinstance(block, dict) or set(block) - set(_DIRECTIONS):
            raise VocabularyError(f"{source}: context.{category} must map forward/backward/both to phrases")
        for direction in _DIRECTIONS:
            for phrase in _strings(block.get(direction), f"{source}: context.{category}.{direction}"):
                key = " ".join(phrase.lower().split())
                if key in triggers and triggers[key] != (category, direction):
                    raise VocabularyError(f"{source}: trigger {phrase!r} is listed twice with different meanings")
                triggers[key] = (category, direction)
    pseudo = tuple(dict.fromkeys(rules.pseudo + _strings(data.get("pseudo"), f"{source}: context.pseudo")))
    terminate = tuple(dict.fromkeys(rules.terminate + _strings(data.get("terminate"), f"{source}: context.terminate")))
    for kind, phrases in (("pseudo", pseudo), ("terminate", terminate)):
        both = sorted({" ".join(p.lower().split()) for p in phrases} & triggers.keys())
        if both:
            raise VocabularyError(f"{source}: {', '.join(map(repr, both))} is both a trigger and a {kind} phrase")
    window = data.get("window") or {}
    if not isinstance(window, dict) or set(window) - {"forward", "backward"} or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 100 for v in window.values()
    ):
        raise VocabularyError(f"{source}: context.window must map forward/backward to a number of words (1-100)")
    return ContextRules(
        triggers=triggers,
        pseudo=pseudo,
        terminate=terminate,
        forward_window=window.get("forward", rules.forward_window),
        backward_window=window.get("backward", rules.backward_window),
    )


def load_vocabulary(schema: str, extra: Sequence[Path | str] = ()) -> Vocabulary:
    """The built-in vocabulary of *schema* plus the built-in context rules, extended by each *extra* YAML file.

    Parameters
    ----------
    schema : str
        ``nih14``, ``vindr-cxr-global``, ``vindr-cxr-local`` (see :func:`builtin_schemas`).
    extra : sequence of path
        A site's own YAML files, in order (see the module docstring for the format).

    Raises
    ------
    VocabularyError
        Unknown schema, unreadable or malformed file (the message names the file and the key).
    """
    data = _read_yaml(f"{schema}.yaml", _builtin_text(schema))
    labels: dict[str, LabelVocabulary] = {}
    _merge_labels(labels, data.get("labels") or {}, f"{schema}.yaml", resolving=(schema,))
    context = _merge_context(ContextRules(), _read_yaml("context.yaml", _builtin_text("context")).get("context"),
                             "context.yaml")
    if data.get("context"):
        context = _merge_context(context, data["context"], f"{schema}.yaml")
    for path in extra:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not readable UTF-8 text"
            raise VocabularyError(f"{path}: cannot read ({reason})") from None
        more = _read_yaml(str(path), text)
        _merge_labels(labels, more.get("labels") or {}, str(path), resolving=())
        if more.get("context"):
            context = _merge_context(context, more["context"], str(path))
    if not labels:
        raise VocabularyError(f"{schema}.yaml: no label")
    no_finding, hidden = _no_finding(data.get("no_finding"), f"{schema}.yaml", schema=schema)
    if no_finding in labels:
        raise VocabularyError(f"{schema}.yaml: no_finding {no_finding!r} is also a label")
    return Vocabulary(schema, labels, context, no_finding, hidden)


def _no_finding(value: Any, source: str, *, schema: str) -> tuple[str | None, dict[str, LabelVocabulary]]:
    """Parse ``no_finding: {label: "No finding", also: [other-schema, ...]}``."""
    if value is None:
        return None, {}
    if not isinstance(value, dict) or set(value) - {"label", "also"} or not isinstance(value.get("label"), str):
        raise VocabularyError(f"{source}: no_finding must be {{label: name, also: [schema, ...]}}")
    hidden: dict[str, LabelVocabulary] = {}
    for other in _strings(value.get("also"), f"{source}: no_finding.also"):
        for name, lv in _builtin_labels(other, resolving=(schema, other)).items():
            hidden[f"{other}/{name}"] = replace(lv, name=f"{other}/{name}")
    return value["label"], hidden
