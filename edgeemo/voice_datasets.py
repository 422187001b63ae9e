"""Readers for speech emotion corpora: RAVDESS, TESS, CREMA-D and SAVEE.

Readers only parse file names (no audio is decoded): each returns a VoiceDataset of
paths, canonical label indices and speaker groups (``<corpus>:<speaker>``, so corpora
never collide when combined). Labels with no canonical class, or dropped by an explicit
override, are counted in ``excluded``; overrides are listed in ``notes``. A file whose
name does not fit the corpus raises an EdgeemoError naming it (``strict=True``, the
default) or, with ``strict=False``, is skipped and listed in ``unmatched``. Hidden files
(``._*`` from macOS, ``.DS_Store``) and files that are not .wav/.flac/.aif(f) are ignored.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from edgeemo.errors import EdgeemoError
from edgeemo.labels import EMOTIONS, UnknownLabelError, index_of, to_canonical
from edgeemo.splits import group_split

AUDIO_SUFFIXES = {".wav", ".flac", ".aif", ".aiff"}
CORPORA = ("ravdess", "tess", "cremad", "savee")
RAVDESS_NAMES = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}

# Each pattern yields (speaker, raw label) from a file's stem; SAVEE's <code><nn> form takes the folder.
PATTERNS: dict[str, re.Pattern] = {
    # modality-channel-emotion-intensity-statement-repetition-actor
    "ravdess": re.compile(r"^0[1-3]-0[12]-(?P<label>\d{2})-0[12]-(?P<statement>0[12])-0[12]-(?P<speaker>\d{2})$"),
    # OAF_/YAF_<word>_<emotion>; one published file is OA_bite_neutral
    "tess": re.compile(r"^(?P<speaker>OAF|YAF|OA)_(?P<word>[a-z]+)_(?P<label>[a-z_]+)$", re.IGNORECASE),
    # <actor>_<sentence>_<EMO>_<level>
    "cremad": re.compile(
        r"^(?P<speaker>\d{4})_(?P<sentence>[A-Z]{3})_(?P<label>[A-Z]{3})_(?P<level>[A-Z]{1,2})$", re.IGNORECASE
    ),
    # flat DC_a01 form, or <code><nn> inside AudioData/<speaker>/
    "savee": re.compile(r"^(?:(?P<speaker>[A-Z]{2})_)?(?P<label>sa|su|a|d|f|h|n)(?P<n>\d{2})$"),
}
# the group of each pattern that names what the clip says (SAVEE's codes do not say which sentences are shared)
SENTENCE_GROUPS = {"ravdess": "statement", "tess": "word", "cremad": "sentence"}
PATTERN_HELP = {
    "ravdess": "03-01-EE-II-SS-RR-AA (modality-channel-emotion-intensity-statement-repetition-actor)",
    "tess": "OAF_<word>_<emotion> or YAF_<word>_<emotion>",
    "cremad": "<actor>_<sentence>_<EMO>_<level>, e.g. 1001_DFA_ANG_XX",
    "savee": "<speaker>/<code><nn> (e.g. DC/a01) or <speaker>_<code><nn> (e.g. DC_a01)",
}


class VoiceItem(NamedTuple):
    path: str
    label: int
    speaker: str


@dataclass
class VoiceDataset:
    """Audio file paths, labels (index into EMOTIONS) and speaker groups (``corpus:speaker``)."""

    name: str
    paths: list[str]
    labels: np.ndarray
    groups: np.ndarray
    excluded: Counter = field(default_factory=Counter)
    unmatched: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[VoiceItem]:
        for path, label, speaker in zip(self.paths, self.labels, self.groups, strict=True):
            yield VoiceItem(path, int(label), str(speaker))

    @property
    def sources(self) -> list[str]:
        return self.paths

    def speakers(self) -> list[str]:
        return sorted({str(g) for g in self.groups})

    def subset(self, idx: np.ndarray | list[int], name: str | None = None) -> VoiceDataset:
        idx = np.asarray(idx, dtype=np.int64)
        return VoiceDataset(
            name or self.name,
            [self.paths[i] for i in idx],
            self.labels[idx],
            self.groups[idx],
            Counter(self.excluded),
            list(self.unmatched),
            list(self.notes),
        )

    def first_per_class(self, n: int | None) -> VoiceDataset:
        """The first ``n`` clips of each class, in order (all clips for None)."""
        if n is None:
            return self
        keep = [np.flatnonzero(self.labels == c)[:n] for c in np.unique(self.labels)]
        return self.subset(np.sort(np.concatenate(keep)) if keep else [])

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(EMOTIONS))
        return {name: int(c) for name, c in zip(EMOTIONS, counts, strict=True)}

    def summary(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.class_counts().items())
        n_spk = len(self.speakers())
        text = f"{self.name}: {len(self)} clips, {n_spk} speaker{'s' if n_spk != 1 else ''} ({counts})"
        if self.excluded:
            text += "; excluded: " + ", ".join(f"{k} {v}" for k, v in sorted(self.excluded.items()))
        if self.unmatched:
            shown = ", ".join(Path(p).name for p in self.unmatched[:3])
            more = f" and {len(self.unmatched) - 3} more" if len(self.unmatched) > 3 else ""
            text += f"; skipped {len(self.unmatched)} files with unexpected names ({shown}{more})"
        if self.notes:
            text += "; " + "; ".join(self.notes)
        return text


def audio_files(root: str | Path) -> list[Path]:
    """Audio files under ``root`` (recursively, sorted), or ``[root]`` for a single file."""
    root = Path(root)
    if not root.exists():
        raise EdgeemoError("no such file or folder", root)
    if root.is_file():
        return [root]
    files = [
        p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files)


def parse_name(corpus: str, path: Path) -> tuple[str, str] | None:
    """(speaker, raw label) from a file name, or None if it does not fit ``corpus``."""
    match = PATTERNS[corpus].match(path.stem)
    if match is None:
        return None
    speaker, label = match.group("speaker"), match.group("label")
    if corpus == "tess":
        speaker = "OAF" if speaker.upper() == "OA" else speaker.upper()  # OA_bite_neutral.wav
    elif corpus == "savee" and speaker is None:
        speaker = path.parent.name
        if not re.fullmatch(r"[A-Za-z]{2}", speaker):
            return None
        speaker = speaker.upper()
    return speaker, label


def clip_sentence(path: str | Path) -> str | None:
    """``corpus:sentence`` that a clip's file name says it speaks (RAVDESS' statement, CREMA-D's
    sentence code, TESS' word), or None where the name does not say (SAVEE, unknown names)."""
    stem = Path(path).stem
    for corpus, group in SENTENCE_GROUPS.items():
        match = PATTERNS[corpus].match(stem)
        if match is not None:
            return f"{corpus}:{match.group(group).lower()}"
    return None


def detect_corpus(files: Sequence[Path]) -> Counter:
    """How many of ``files`` fit each corpus's naming pattern."""
    counts: Counter = Counter()
    for path in files:
        for corpus in CORPORA:
            if parse_name(corpus, path) is not None:
                counts[corpus] += 1
    return counts


def _describe(corpus: str, raw: str) -> str:
    raw = raw.lower()
    if corpus == "ravdess" and raw in RAVDESS_NAMES:
        return f"ravdess {raw} ({RAVDESS_NAMES[raw]})"
    return f"{corpus} {raw}"


def read_corpus(
    root: str | Path,
    corpus: str,
    overrides: Mapping[str, str | None] | None = None,
    strict: bool = True,
) -> VoiceDataset:
    """Read one corpus's files under ``root`` by their names.

    ``overrides`` maps the corpus's raw labels (e.g. RAVDESS ``{"02": None}`` to drop calm
    instead of counting it as neutral) to a canonical emotion or None (excluded).
    """
    if corpus not in CORPORA:
        raise EdgeemoError(f"unknown voice corpus {corpus!r} (expected one of {', '.join(CORPORA)})")
    overrides = dict(overrides or {})
    for raw, target in overrides.items():
        if target is not None and target not in EMOTIONS:
            raise EdgeemoError(f"label override {raw!r} -> {target!r}: not a canonical emotion {EMOTIONS}")
    paths: list[str] = []
    labels: list[int] = []
    groups: list[str] = []
    excluded: Counter = Counter()
    unmatched: list[str] = []
    calm_as_neutral = 0
    for path in audio_files(root):
        parsed = parse_name(corpus, path)
        canonical: str | None = None
        if parsed is not None:
            try:
                canonical = to_canonical(corpus, parsed[1], overrides)
            except UnknownLabelError as exc:
                if strict:
                    raise EdgeemoError(f"unexpected {corpus} file name: {exc}", path) from None
                parsed = None
        if parsed is None:
            if strict:
                raise EdgeemoError(
                    f"file name does not match the {corpus} pattern {PATTERN_HELP[corpus]} "
                    "(pass strict=False to skip and report such files)",
                    path,
                )
            unmatched.append(str(path))
            continue
        if canonical is None:
            excluded[_describe(corpus, parsed[1])] += 1
            continue
        calm_as_neutral += corpus == "ravdess" and parsed[1] == "02" and canonical == "neutral"
        paths.append(str(path))
        labels.append(index_of(canonical))
        groups.append(f"{corpus}:{parsed[0]}")
    notes = [f"label override {_describe(corpus, k)} -> {v or 'excluded'}" for k, v in sorted(overrides.items())]
    if calm_as_neutral:
        notes.append(
            f"ravdess 02 (calm) counted as neutral: {calm_as_neutral} clips (override {{'02': None}} drops them)"
        )
    if not paths:
        raise EdgeemoError(f"no {corpus} clips found (expected names like {PATTERN_HELP[corpus]})", root)
    return VoiceDataset(corpus, paths, np.array(labels, np.int64), np.array(groups), excluded, unmatched, notes)


def read_ravdess(root: str | Path, overrides: Mapping[str, str | None] | None = None, strict: bool = True):
    """RAVDESS ``Actor_NN/03-01-EE-II-SS-RR-AA.(wav|flac)``; calm (02) counts as neutral unless overridden."""
    return read_corpus(root, "ravdess", overrides, strict)


def read_tess(root: str | Path, overrides: Mapping[str, str | None] | None = None, strict: bool = True):
    """TESS ``OAF_/YAF_<word>_<emotion>`` (any folder case); ``ps``/pleasant surprise -> surprise."""
    return read_corpus(root, "tess", overrides, strict)


def read_cremad(root: str | Path, overrides: Mapping[str, str | None] | None = None, strict: bool = True):
    """CREMA-D ``<actor>_<sentence>_<EMO>_<level>`` (six emotions, no surprise)."""
    return read_corpus(root, "cremad", overrides, strict)


def read_savee(root: str | Path, overrides: Mapping[str, str | None] | None = None, strict: bool = True):
    """SAVEE ``AudioData/<spk>/<code><nn>`` or flat ``<spk>_<code><nn>``."""
    return read_corpus(root, "savee", overrides, strict)


def combine(datasets: Sequence[VoiceDataset]) -> VoiceDataset:
    """Concatenate datasets (speaker ids already carry their corpus prefix)."""
    if not datasets:
        raise EdgeemoError("no datasets to combine")
    if len(datasets) == 1:
        return datasets[0]
    excluded: Counter = Counter()
    for d in datasets:
        excluded.update(d.excluded)
    return VoiceDataset(
        "+".join(d.name for d in datasets),
        [p for d in datasets for p in d.paths],
        np.concatenate([d.labels for d in datasets]),
        np.concatenate([d.groups for d in datasets]),
        excluded,
        [p for d in datasets for p in d.unmatched],
        [n for d in datasets for n in d.notes],
    )


def load_voice(
    path_or_paths: str | Path | Sequence[str | Path],
    corpus: str | Sequence[str] = "auto",
    overrides: Mapping[str, Mapping[str, str | None]] | None = None,
    strict: bool = True,
) -> VoiceDataset:
    """Read one or several corpus folders; ``corpus='auto'`` recognises each from its file names.

    ``corpus`` is one name for all paths or one per path. ``overrides`` is per corpus,
    e.g. ``{"ravdess": {"02": None}}``. A folder whose files fit several corpora is an
    error under ``strict`` (point at each corpus folder separately); otherwise the most
    frequent corpus wins and the rest are listed in ``unmatched``.
    """
    roots = [path_or_paths] if isinstance(path_or_paths, str | Path) else list(path_or_paths)
    names = [corpus] * len(roots) if isinstance(corpus, str) else list(corpus)
    if not roots or len(names) != len(roots):
        raise EdgeemoError(f"got {len(roots)} paths and {len(names)} corpus names")
    overrides = overrides or {}
    unknown = set(overrides) - set(CORPORA)
    if unknown:
        raise EdgeemoError(f"label overrides for unknown corpora {sorted(unknown)} (expected {', '.join(CORPORA)})")
    parts = []
    for root, name in zip(roots, names, strict=True):
        if name == "auto":
            name = _auto(Path(root), strict)
        parts.append(read_corpus(root, name, overrides.get(name), strict))
    return combine(parts)


def _auto(root: Path, strict: bool) -> str:
    counts = detect_corpus(audio_files(root))
    if not counts:
        raise EdgeemoError(
            "cannot tell the corpus: no audio file names like RAVDESS, TESS, CREMA-D or SAVEE "
            f"(expected e.g. {PATTERN_HELP['ravdess']})",
            root,
        )
    if len(counts) > 1 and strict:
        found = ", ".join(f"{k} {v}" for k, v in counts.most_common())
        raise EdgeemoError(f"files of several corpora ({found}); pass each corpus folder separately", root)
    return counts.most_common(1)[0][0]


def speaker_split(
    dataset: VoiceDataset,
    test_speakers: Sequence[str | int] | None = None,
    fraction: float = 0.2,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Speaker-independent (keep_idx, test_idx).

    With ``test_speakers`` those speakers are held out; a name matches ``corpus:speaker``
    exactly, the speaker part alone (``"17"``, ``"1009"``, ``"DC"``), or the same number
    (``17`` matches ``ravdess:17``). Otherwise whole speakers are held out at random
    until ``fraction`` of the clips is reached (edgeemo.splits.group_split).
    """
    if test_speakers is None:
        return group_split(dataset.groups, fraction, seed)
    held = _matching_speakers(dataset, test_speakers)
    mask = np.array([str(g) in held for g in dataset.groups], dtype=bool)
    if mask.all():
        raise EdgeemoError("test_speakers would hold out every speaker; nothing left to train on")
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def select_speakers(dataset: VoiceDataset, names: Sequence[str | int]) -> VoiceDataset:
    """Only the clips of the named speakers (matched as in ``speaker_split``)."""
    keep = _matching_speakers(dataset, names)
    idx = [i for i, g in enumerate(dataset.groups) if str(g) in keep]
    return dataset.subset(idx, f"{dataset.name} ({', '.join(sorted(keep))})")


def drop_speakers(dataset: VoiceDataset, names: Sequence[str | int] | None) -> VoiceDataset:
    """``dataset`` without the clips of the named speakers (matched as in ``speaker_split``); names that
    match no speaker are ignored (another corpus's held-out speakers, say)."""
    if not names:
        return dataset
    gone = {str(g) for g in dataset.groups if any(_speaker_matches(str(n), str(g)) for n in names)}
    return dataset.subset([i for i, g in enumerate(dataset.groups) if str(g) not in gone])


def _matching_speakers(dataset: VoiceDataset, names: Sequence[str | int]) -> set[str]:
    """The ``corpus:speaker`` groups the names match; an unknown name is an error listing the speakers."""
    groups = {str(g) for g in dataset.groups}
    found: set[str] = set()
    for name in names:
        hits = {g for g in groups if _speaker_matches(str(name), g)}
        if not hits:
            raise EdgeemoError(f"no speaker {name!r} in {dataset.name} (speakers: {', '.join(dataset.speakers())})")
        found |= hits
    return found


def _speaker_matches(name: str, group: str) -> bool:
    local = group.split(":", 1)[-1]
    if name in (group, local) or name.upper() == local.upper():
        return True
    return name.isdigit() and local.isdigit() and int(name) == int(local)
