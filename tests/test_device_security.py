"""Security and privacy of the daemon: HTTP on localhost by default, remote only with
allow_remote and a bearer token (checked on every endpoint), secrets out of reprs and logs,
only results leave the device (no frames, no audio, not in logs either), a tampered model is
refused, the systemd unit is hardened, and device.toml never crashes the daemon: any bad
file (wrong types, unknown keys, invalid TOML, non-UTF-8 bytes) is one error naming the file
and the key (hypothesis fuzzes it)."""

from __future__ import annotations

import configparser
import io
import json
import logging
import math
import shutil
import string
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import one_line_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from edgeemo.cli import app
from edgeemo.device.config import DeviceConfig, from_dict, load_config, override
from edgeemo.device.daemon import build_sinks
from edgeemo.device.demo_clip import DemoCamera, demo_audio
from edgeemo.device.microphone import AudioReplay
from edgeemo.device.paths import FacePath, VoicePath
from edgeemo.device.pipeline import Pipeline, PipelineSettings
from edgeemo.device.sinks import HttpSink, JsonLinesSink, RotatingFileSink
from edgeemo.device.sources import FrameReplay
from edgeemo.errors import EdgeemoError
from edgeemo.predict import open_face_model, open_voice_model

DEVICE = Path(__file__).resolve().parents[1] / "device"
TOKEN = "0123456789abcdef0123456789abcdef"


def request(url: str, token: str | None = None, scheme: str = "Bearer") -> tuple[int, bytes, dict]:
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as resp:
            return resp.status, resp.read() if resp.status != 200 or "events" not in url else b"", dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


# ----------------------------------------------------------------------------- network exposure


def test_http_is_localhost_only_by_default():
    assert DeviceConfig().http.host == "127.0.0.1" and not DeviceConfig().http.allow_remote
    with pytest.raises(EdgeemoError, match="refusing to serve HTTP on '0.0.0.0'"):
        HttpSink("0.0.0.0", 0)  # the class refuses too, not only the config
    with pytest.raises(EdgeemoError, match="refusing"):
        HttpSink("0.0.0.0", 0, allow_remote=True)  # allowed, but no token


@pytest.mark.parametrize(
    "http, match",
    [
        ('host = "0.0.0.0"', r"\[http\] host = '0.0.0.0' serves the network.*allow_remote = true.*token"),
        ('host = "192.168.1.20"\nallow_remote = true', r"allow_remote = true needs a bearer token.*token_file"),
        ('host = ""\nallow_remote = true', r"needs a bearer token"),
        (f'token = "{TOKEN}"\ntoken_file = "t"', r"\[http\] token and token_file are both set"),
        ('token = "short"', r"\[http\] token must be at least 16 characters"),
        ('token_file = "/nonexistent/token"', r"\[http\] token_file = '/nonexistent/token': cannot read it"),
    ],
)
def test_remote_http_needs_allow_remote_and_a_token(tmp_path, http, match):
    path = tmp_path / "device.toml"
    path.write_text(f"[http]\n{http}\n")
    with pytest.raises(EdgeemoError, match=match) as exc:
        load_config(path)
    assert str(exc.value).startswith(f"{path}: ")


def test_a_command_line_host_is_checked_too_and_names_the_file(tmp_path):
    path = tmp_path / "device.toml"
    path.write_text("[camera]\nenabled = false\n")
    with pytest.raises(EdgeemoError, match=rf"^{path}: \[http\] host = '0.0.0.0' serves the network"):
        override(load_config(path), http__host="0.0.0.0")
    result = CliRunner().invoke(app, ["run", "--config", str(path), "--host", "0.0.0.0"], env={"COLUMNS": "200"})
    assert "[http] host = '0.0.0.0'" in one_line_error(result) and str(path) in result.output


def test_token_from_the_environment(monkeypatch):
    monkeypatch.setenv("EDGEEMO_HTTP_TOKEN", TOKEN)
    cfg = from_dict({"http": {"host": "0.0.0.0", "allow_remote": True}})
    assert cfg.http.host == "0.0.0.0"


def test_every_endpoint_wants_the_bearer_token(tmp_path):
    token_file = tmp_path / "http.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    cfg = from_dict({"output": {"stdout": "off"}, "http": {"host": "0.0.0.0", "port": 0, "allow_remote": True,
                                                           "token_file": str(token_file)}})
    (http,) = build_sinks(cfg)
    try:
        url = f"http://127.0.0.1:{http.port}"
        for path in ("/latest", "/health", "/events", "/nope"):
            code, body, headers = request(url + path)
            assert code == 401 and headers["WWW-Authenticate"].startswith("Bearer") and b"unauthorized" in body
            assert request(url + path, TOKEN[:-1] + "x")[0] == 401  # one character off
            assert request(url + path, TOKEN + "0")[0] == 401  # longer
            assert request(url + path, TOKEN, scheme="Basic")[0] == 401
        assert request(url + "/latest", TOKEN)[0] == 204
        assert request(url + "/latest", TOKEN, scheme="bearer")[0] == 204  # the scheme is case-insensitive
        code, body, _ = request(url + "/health", TOKEN)
        assert code == 200 and json.loads(body)["status"] == "ok"
        http.publish({"ts": 1.0})
        assert json.loads(request(url + "/latest", TOKEN)[1]) == {"ts": 1.0}
        assert request(url + "/events", TOKEN)[0] == 200
        health = http.health()
        assert health["auth"] and health["unauthorized"] == 16
        assert "Python" not in request(url + "/latest", TOKEN)[2].get("Server", "")  # no version banner
    finally:
        http.close()


def test_secrets_stay_out_of_reprs_and_logs(tmp_path, caplog):
    cfg = from_dict({"output": {"stdout": "off"}, "http": {"port": 0, "token": TOKEN},
                     "mqtt": {"username": "u", "password": "hunter2-hunter2"}})
    assert TOKEN not in repr(cfg) and "hunter2" not in repr(cfg)
    with caplog.at_level(logging.DEBUG, logger="edgeemo.device"):
        (http,) = build_sinks(cfg)
        request(f"http://127.0.0.1:{http.port}/latest", TOKEN)
        request(f"http://127.0.0.1:{http.port}/latest", "wrong-token-wrong-token")
        http.close()
    assert caplog.records and not any(TOKEN in r.getMessage() or "wrong-token" in r.getMessage()
                                      for r in caplog.records)


# ----------------------------------------------------------------------------- privacy: only results leave


def test_only_results_leave_the_device_and_logs_carry_no_media(tmp_path, caplog, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cam = DemoCamera(seconds=1.0, fps=10, no_face_s=0.3, realtime=False)
    frames = [cam.frame(i) for i in range(cam.n)]
    pcm = demo_audio(0.0, 3.5, 0.0)
    stdout, out = io.StringIO(), tmp_path / "out" / "results.jsonl"
    http = HttpSink(port=0)
    sinks = [JsonLinesSink(stdout), RotatingFileSink(out), http]
    roomy = PipelineSettings(frame_queue=20, audio_queue_s=60, publish_interval_s=0.0)
    p = Pipeline(FrameReplay(frames, fps=0), AudioReplay(pcm, realtime=False), FacePath(open_face_model("face")),
                 VoicePath(open_voice_model("voice")), sinks, settings=roomy)
    with caplog.at_level(logging.DEBUG, logger="edgeemo.device"):
        p.run(duration_s=60, handle_signals=False)
    lines = stdout.getvalue().splitlines()
    assert lines and out.read_text().splitlines() == lines
    for line in lines:
        r = json.loads(line)
        assert set(r) == {"ts", "face", "voice", "fused", "status"} and len(line) < 1500
        for name in ("face", "voice"):
            assert r[name] is None or set(r[name]) == {"label", "probs", "ts", "age_s", "confidence"}
    assert sorted(str(f.relative_to(tmp_path)) for f in tmp_path.rglob("*")) == ["out", "out/results.jsonl"]
    raw = [frames[0].tobytes()[i : i + 32] for i in (0, 100_000)] + [pcm.tobytes()[20_000:20_032]]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert all(len(r.getMessage()) < 500 for r in caplog.records)
    assert "array(" not in text and not any(chunk.hex() in text or repr(chunk) in text for chunk in raw)
    assert len(json.dumps(p.health())) < 20_000  # /health: counters and states, no media either


def test_a_tampered_model_is_refused(tmp_path):
    shipped = open_face_model("face").path
    copy = tmp_path / shipped.name
    shutil.copy(shipped, copy)
    shutil.copy(shipped.with_name(shipped.name + ".json"), tmp_path / (shipped.name + ".json"))
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(EdgeemoError, match="sha256 .* does not match its manifest"):
        open_face_model(str(copy))


def test_systemd_unit_runs_unprivileged_and_hardened():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # keys are case-sensitive
    unit.read(DEVICE / "edgeemo.service")
    svc = unit["Service"]
    assert svc["User"] == "edgeemo" and svc["Group"] == "edgeemo"
    assert set(svc["SupplementaryGroups"].split()) == {"video", "audio"}
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes",
                       "ProtectKernelModules": "yes", "ProtectKernelTunables": "yes", "ProtectControlGroups": "yes",
                       "LockPersonality": "yes", "UMask": "0077"}.items():
        assert svc.get(key) == value, key
    assert "AF_INET" in svc["RestrictAddressFamilies"] and "AF_NETLINK" not in svc["RestrictAddressFamilies"]
    assert svc["StateDirectory"] == "edgeemo" and "ReadWritePaths" not in svc  # writes only its state folder
    assert (DEVICE / "SECURITY.md").is_file()


# ----------------------------------------------------------------------------- device.toml robustness

KNOWN = {t: list(vars(getattr(DeviceConfig(), t))) for t in vars(DeviceConfig())}
TABLES = list(KNOWN)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-2, max_value=70000),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["0", "default", "json", "debug", "auto", "127.0.0.1", "0.0.0.0", "entropy", "", "\x00"]),
    st.datetimes(), st.dates(),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["face", "voice", "gait"]) | st.text(max_size=5), inner, max_size=3), max_leaves=6)


@st.composite
def config_dicts(draw):
    tables = draw(st.lists(st.sampled_from(TABLES) | st.text(min_size=1, max_size=8), max_size=4, unique=True))
    data = {}
    for table in tables:
        if draw(st.integers(0, 9)) == 0:
            data[table] = draw(values)  # not even a table
            continue
        keys = st.sampled_from(KNOWN.get(table, ["x"])) | st.text(min_size=1, max_size=8)
        data[table] = draw(st.dictionaries(keys, values, max_size=4))
    return data


def _error_names_the_file_and_a_table(exc: EdgeemoError, where: Path, data: dict) -> None:
    message = str(exc)
    assert message.startswith(f"{where}: "), message
    assert "\n" not in message or "not valid TOML" in message, message  # one line
    assert len(message) < 400, message
    assert any(str(t) in message or json.dumps(str(t)) in message for t in data), (message, list(data))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config_dicts())
def test_fuzzed_config_tables_load_or_name_the_file_and_the_key(data):
    where = Path("fuzzed/device.toml")
    try:
        cfg = from_dict(data, where)
    except EdgeemoError as exc:
        _error_names_the_file_and_a_table(exc, where, data)
        return
    assert isinstance(cfg, DeviceConfig)
    assert cfg == override(cfg, log__level=cfg.log.level)  # a loaded config is valid as a whole, too


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(v)  # a TOML basic string


toml_scalars = st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=10)


@st.composite
def toml_texts(draw):
    """TOML that parses (known and unknown tables and keys, any scalar types), with random damage sometimes."""
    lines = []
    for table in draw(st.lists(st.sampled_from(TABLES) | st.sampled_from(["fusion.weights", "speaker"]), max_size=4,
                               unique=True)):
        lines.append(f"[{table}]")
        keys = KNOWN.get(table, ["face", "voice", "x"])
        for key in draw(st.lists(st.sampled_from(keys) | st.sampled_from(["zz"]), max_size=3, unique=True)):
            lines.append(f"{key} = {toml_value(draw(toml_scalars | st.lists(toml_scalars, max_size=2)))}")
    text = "\n".join(lines) + "\n"
    damage = draw(st.integers(0, 3))
    if damage == 1:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(string.printable, max_size=3)) + text[at:]
    return text.encode() + (draw(st.binary(max_size=4)) if damage == 2 else b"")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(toml_texts())
def test_fuzzed_toml_files_load_or_give_one_clear_error(raw):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "device.toml"
        path.write_bytes(raw)
        try:
            cfg = load_config(path)
        except EdgeemoError as exc:
            assert str(exc).startswith(f"{path}: "), str(exc)
            return
        assert isinstance(cfg, DeviceConfig)


@pytest.mark.parametrize(
    "raw, match",
    [
        (b'[camera]\nsource = "caf\xe9"\n', r"not UTF-8 text \(byte 0xe9 on line 2\)"),
        (b"\xff\xfe[\x00c\x00", r"not UTF-8 text \(byte 0xff on line 1\)"),
        (b"a = " + b"[" * 100_000, r"not valid TOML: arrays or tables nested too deeply"),
        (b"x" * 1_000_001, r"over 1000000 bytes"),
        (b"[http]\nport = 70000\n", r"\[http\] port must be between 0 and 65535, got 70000"),
        (b"[mqtt]\nqos = 3\n", r"\[mqtt\] qos must be one of 0, 1, 2, got 3"),
        (b"[camera]\nfps = -1\n", r"\[camera\] fps must be between 0 and 1000"),
        (b"[microphone]\nchunk_s = 0\n", r"\[microphone\] chunk_s must be between 0.001 and 10.0"),
        (b"[pipeline]\nframe_queue = 100000000\n", r"pipeline frame_queue must be <= 10000"),
        (b"[pipeline]\nretry_initial_s = 5.0\nretry_max_s = 1.0\n", r"retry_max_s \(1.0\) must be >= retry_initial_s"),
        (b'[camera]\nsource = "a\\u0000b"\n', r"\[camera\] source must not contain a NUL"),
        (b"[mqtt]\nca_file = 'ca.crt'\n", r"\[mqtt\] ca_file is set but tls = false"),
        (b"[mqtt]\nenabled = true\ntls = true\nca_file = '/nonexistent/ca.crt'\n", r"\[mqtt\] ca_file = .*no such"),
        (b"[mqtt]\nenabled = true\npassword = 'p'\n", r"\[mqtt\] a password is set but username is empty"),
    ],
)
def test_specific_bad_files(tmp_path, raw, match):
    path = tmp_path / "device.toml"
    path.write_bytes(raw)
    with pytest.raises(EdgeemoError, match=match) as exc:
        load_config(path)
    assert str(exc.value).startswith(f"{path}: ")


def test_a_config_that_is_a_folder_is_a_clear_error(tmp_path):
    with pytest.raises(EdgeemoError, match="cannot read the config file"):
        load_config(tmp_path)
