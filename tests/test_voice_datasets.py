"""Speech corpus readers (RAVDESS, TESS, CREMA-D, SAVEE): names -> labels and speakers, splits."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SHARED_DATA, requires_data

from edgeemo.errors import EdgeemoError
from edgeemo.labels import EMOTIONS
from edgeemo.voice_datasets import (
    clip_sentence,
    load_voice,
    read_cremad,
    read_ravdess,
    read_savee,
    read_tess,
    speaker_split,
)

DATA = SHARED_DATA
needs_data = requires_data("ravdess")


def _touch(root: Path, names: list[str]) -> Path:
    """Tiny valid audio files (160 samples of silence) at root/<name>."""
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.zeros(160), 16000, subtype="PCM_16", format="FLAC" if name.endswith(".flac") else "WAV")
    return root


def _label(ds, stem):
    i = next(k for k, p in enumerate(ds.paths) if Path(p).stem == stem)
    return EMOTIONS[ds.labels[i]], str(ds.groups[i])


# ----------------------------------------------------------------------------- generated files


def test_ravdess_names_give_labels_and_actor_speakers(tmp_path):
    root = _touch(
        tmp_path / "ravdess",
        [
            "Actor_01/03-01-01-01-01-01-01.wav",  # neutral
            "Actor_01/03-01-02-02-01-02-01.wav",  # calm
            "Actor_01/03-01-08-01-02-01-01.flac",  # surprised
            "Actor_12/03-01-05-02-02-02-12.wav",  # angry
            "Actor_12/03-01-07-01-01-01-12.wav",  # disgust
            "Actor_12/notes.txt",  # not audio: ignored
            "Actor_12/._03-01-05-02-02-02-12.wav",  # macOS resource fork: ignored
        ],
    )
    (root / "Actor_12" / "notes.txt").write_text("ignored")
    ds = read_ravdess(root)
    assert len(ds) == 5 and ds.speakers() == ["ravdess:01", "ravdess:12"]
    assert _label(ds, "03-01-02-02-01-02-01") == ("neutral", "ravdess:01")  # calm -> neutral by default
    assert _label(ds, "03-01-08-01-02-01-01") == ("surprise", "ravdess:01")
    assert _label(ds, "03-01-05-02-02-02-12") == ("angry", "ravdess:12")
    assert not ds.excluded and "calm) counted as neutral: 1 clips" in ds.summary()
    items = list(ds)
    assert items[0].path == ds.paths[0] and items[0].label == ds.labels[0] and items[0].speaker == "ravdess:01"

    dropped = read_ravdess(root, overrides={"02": None})
    assert len(dropped) == 4 and dropped.excluded == {"ravdess 02 (calm)": 1}
    assert "label override ravdess 02 (calm) -> excluded" in dropped.summary()
    assert "excluded: ravdess 02 (calm) 1" in dropped.summary()


def test_tess_folder_case_pleasant_surprise_and_the_oa_oddity(tmp_path):
    root = _touch(
        tmp_path / "TESS",
        [
            "OAF_Fear/OAF_back_fear.wav",
            "OAF_Pleasant_surprise/OAF_bar_ps.wav",
            "YAF_pleasant_surprised/YAF_bar_pleasant_surprised.wav",
            "yaf_angry/YAF_germ_angry.wav",
            "OAF_neutral/OA_bite_neutral.wav",
        ],
    )
    ds = read_tess(root)
    assert len(ds) == 5 and ds.speakers() == ["tess:OAF", "tess:YAF"]
    assert _label(ds, "OAF_bar_ps") == ("surprise", "tess:OAF")
    assert _label(ds, "YAF_bar_pleasant_surprised") == ("surprise", "tess:YAF")
    assert _label(ds, "OA_bite_neutral") == ("neutral", "tess:OAF")
    assert _label(ds, "OAF_back_fear") == ("fear", "tess:OAF")


def test_cremad_names(tmp_path):
    root = _touch(
        tmp_path / "AudioWAV",
        ["1001_DFA_ANG_XX.wav", "1001_IEO_HAP_HI.wav", "1091_TIE_NEU_XX.wav", "1050_IWW_FEA_LO.flac"],
    )
    ds = read_cremad(root)
    assert len(ds) == 4 and ds.speakers() == ["cremad:1001", "cremad:1050", "cremad:1091"]
    assert _label(ds, "1050_IWW_FEA_LO") == ("fear", "cremad:1050")
    assert ds.class_counts()["surprise"] == 0


def test_savee_folder_and_flat_forms(tmp_path):
    root = _touch(
        tmp_path / "savee",
        [
            "AudioData/DC/a01.wav",
            "AudioData/JE/su12.wav",
            "AudioData/JE/sa03.wav",
            "flat/KL_n05.wav",
            "flat/DC_d02.wav",
        ],
    )
    ds = read_savee(root)
    assert len(ds) == 5 and ds.speakers() == ["savee:DC", "savee:JE", "savee:KL"]
    assert _label(ds, "su12") == ("surprise", "savee:JE")
    assert _label(ds, "sa03") == ("sad", "savee:JE")
    assert _label(ds, "KL_n05") == ("neutral", "savee:KL")
    assert _label(ds, "DC_d02") == ("disgust", "savee:DC")


def test_a_file_with_an_unexpected_name_is_an_error_or_skipped_and_reported(tmp_path):
    root = _touch(tmp_path / "ravdess", ["Actor_01/03-01-01-01-01-01-01.wav", "Actor_01/recording (1).wav"])
    with pytest.raises(EdgeemoError) as info:
        read_ravdess(root)
    assert info.value.path == root / "Actor_01" / "recording (1).wav" and "strict=False" in str(info.value)
    ds = read_ravdess(root, strict=False)
    assert len(ds) == 1 and ds.unmatched == [str(root / "Actor_01" / "recording (1).wav")]
    assert "skipped 1 files with unexpected names (recording (1).wav)" in ds.summary()


def test_an_unknown_emotion_code_is_an_error_naming_the_file(tmp_path):
    root = _touch(tmp_path / "ravdess", ["Actor_01/03-01-09-01-01-01-01.wav"])
    with pytest.raises(EdgeemoError, match="unknown ravdess label '09'") as info:
        read_ravdess(root)
    assert info.value.path.name == "03-01-09-01-01-01-01.wav"


def test_load_voice_detects_and_combines_corpora_with_prefixed_speakers(tmp_path):
    rav = _touch(tmp_path / "rav", ["Actor_10/03-01-03-01-01-01-10.wav", "Actor_11/03-01-04-01-01-01-11.wav"])
    sav = _touch(tmp_path / "sav", ["AudioData/DC/h01.wav", "AudioData/JE/n01.wav"])
    tess = _touch(tmp_path / "tess", ["YAF_sad/YAF_back_sad.wav"])
    crema = _touch(tmp_path / "crema", ["1010_DFA_SAD_XX.wav"])
    assert load_voice(rav).name == "ravdess" and load_voice(crema).name == "cremad"
    ds = load_voice([rav, sav, tess, crema], overrides={"savee": {"n": None}})
    assert ds.name == "ravdess+savee+tess+cremad" and len(ds) == 5
    assert ds.speakers() == ["cremad:1010", "ravdess:10", "ravdess:11", "savee:DC", "tess:YAF"]
    assert ds.excluded == {"savee n": 1}
    with pytest.raises(EdgeemoError, match="unknown corpora"):
        load_voice(rav, overrides={"iemocap": {}})


def test_load_voice_refuses_mixed_or_unknown_folders(tmp_path):
    mixed = _touch(tmp_path / "mixed", ["03-01-03-01-01-01-10.wav", "03-01-04-01-01-01-10.wav", "YAF_back_sad.wav"])
    with pytest.raises(EdgeemoError, match="several corpora"):
        load_voice(mixed)
    lenient = load_voice(mixed, strict=False)
    assert lenient.name == "ravdess" and len(lenient) == 2 and len(lenient.unmatched) == 1
    unknown = _touch(tmp_path / "unknown", ["hello.wav"])
    with pytest.raises(EdgeemoError, match="cannot tell the corpus"):
        load_voice(unknown)
    with pytest.raises(EdgeemoError, match="no such file"):
        load_voice(tmp_path / "nowhere")
    with pytest.raises(EdgeemoError, match="unknown voice corpus"):
        load_voice(mixed, corpus="iemocap")


def test_speaker_split_by_name_and_at_random(tmp_path):
    names = [f"Actor_{a:02d}/03-01-0{e}-01-01-01-{a:02d}.wav" for a in range(1, 7) for e in range(1, 9)]
    ds = read_ravdess(_touch(tmp_path / "rav", names))
    keep, test = speaker_split(ds, test_speakers=["05", 6])
    assert set(ds.groups[test]) == {"ravdess:05", "ravdess:06"} and len(test) == 16 and len(keep) == 32
    keep, test = speaker_split(ds, fraction=0.3, seed=1)
    assert not set(ds.groups[keep]) & set(ds.groups[test]) and len(keep) + len(test) == len(ds)
    with pytest.raises(EdgeemoError, match="no speaker '42'"):
        speaker_split(ds, test_speakers=["42"])
    with pytest.raises(EdgeemoError, match="every speaker"):
        speaker_split(ds, test_speakers=range(1, 7))


# ----------------------------------------------------------------------------- the real corpora


@needs_data
@pytest.mark.parametrize(
    "corpus,clips,speakers,per_class",
    [
        ("ravdess", 1200, 20, {"neutral": 240, "angry": 160, "surprise": 160}),  # 80 neutral + 160 calm
        ("tess", 1400, 1, {e: 200 for e in EMOTIONS}),
        ("cremad", 807, 10, {"surprise": 0, "angry": 138, "neutral": 117}),
        ("savee", 240, 2, {"neutral": 60, "surprise": 30, "sad": 30}),
    ],
)
def test_real_corpora_counts(corpus, clips, speakers, per_class):
    ds = load_voice(DATA / corpus)
    assert ds.name == corpus and len(ds) == clips and len(ds.speakers()) == speakers
    counts = ds.class_counts()
    assert {k: counts[k] for k in per_class} == per_class
    assert not ds.excluded and not ds.unmatched
    assert all(g.startswith(f"{corpus}:") for g in ds.speakers())


@needs_data
def test_real_ravdess_actors_17_to_20_held_out_by_name():
    ds = load_voice(DATA / "ravdess", overrides={"ravdess": {"02": None}})
    assert len(ds) == 1040 and ds.excluded == {"ravdess 02 (calm)": 160}
    keep, test = speaker_split(ds, test_speakers=["17", "18", "19", "20"])
    assert sorted(set(ds.groups[test])) == [f"ravdess:{a}" for a in range(17, 21)]
    assert len(test) == 4 * 52 and len(keep) == 16 * 52
    assert not set(ds.groups[keep]) & set(ds.groups[test])


@needs_data
def test_real_originals_parse_including_the_aiff_named_wav():
    root = DATA / "original-format-samples"
    tess = load_voice(root / "tess")
    assert len(tess) == 2 and tess.class_counts()["angry"] == 2
    assert len(load_voice(root / "savee")) == 2 and len(load_voice(root / "ravdess")) == 2
    assert len(load_voice(root / "cremad")) == 1
    with pytest.raises(EdgeemoError, match="several corpora"):
        load_voice(DATA)  # the whole data folder mixes corpora: one folder per corpus


def test_clip_sentence_names_what_a_clip_says_where_its_corpus_name_tells():
    assert clip_sentence("Actor_17/03-01-06-02-01-01-17.flac") == "ravdess:01"  # the statement field
    assert clip_sentence("03-01-06-02-02-01-17.wav") == "ravdess:02"
    assert clip_sentence("AudioWAV/1001_DFA_ANG_XX.flac") == "cremad:dfa"
    assert clip_sentence("YAF_angry/YAF_back_angry.wav") == "tess:back"
    assert clip_sentence("OA_bite_neutral.wav") == "tess:bite"
    # SAVEE's codes do not say which sentences are shared across emotions; unknown names say nothing
    assert clip_sentence("AudioData/DC/a01.flac") is None and clip_sentence("DC_a01.wav") is None
    assert clip_sentence("recording.wav") is None


@needs_data
def test_real_corpora_sentences():
    sentences = {c: {clip_sentence(p) for p in load_voice(DATA / c).paths} for c in ("ravdess", "cremad", "tess")}
    assert sentences["ravdess"] == {"ravdess:01", "ravdess:02"}
    assert len(sentences["cremad"]) == 12 and len(sentences["tess"]) == 200
