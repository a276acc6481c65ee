"""Project configuration: discovery, precedence, and located errors."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from coherence.config import Config, ConfigError, find_config, load_config
from tests.ci.util import DATA, cli


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "specs" / "deep").mkdir(parents=True)
    shutil.copy(DATA / "overload.coh", tmp_path / "specs" / "fleet.coh")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_no_configuration_gives_the_defaults(project: Path) -> None:
    assert find_config(project) is None
    assert load_config(start=project) == Config()


def test_discovery_walks_up_and_prefers_coherence_toml(project: Path) -> None:
    deep = project / "specs" / "deep"
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert find_config(deep) is None  # a pyproject.toml without [tool.coherence] is passed over
    (project / "pyproject.toml").write_text('[tool.coherence]\nfail-level = "warning"\n')
    assert find_config(deep) == project / "pyproject.toml"
    (project / "coherence.toml").write_text('fail-level = "note"\n')
    assert find_config(deep) == project / "coherence.toml"
    assert load_config(start=deep).fail_level == "note"


def test_every_key(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        "[tool.coherence]\n"
        'paths = ["specs"]\n'
        'select = ["coh3", "COH5"]\n'
        'ignore = "COH505"\n'
        'fail_level = "warning"\n'
        'baseline = "base.json"\n'
        "ticks = 50\nhorizon = 12\nrlimit = 1000\n"
        'mode = "overapprox"\nlinear = false\nsmt = false\njobs = 3\n'
    )
    c = load_config()
    assert c.jobs == 3
    assert c.paths == ("specs",) and c.select == ("COH3", "COH5") and c.ignore == ("COH505",)
    assert (c.fail_level, c.baseline, c.ticks, c.horizon, c.rlimit, c.mode) == (
        "warning",
        "base.json",
        50,
        12,
        1000,
        "overapprox",
    )
    assert not c.linear and not c.smt and c.source == str(project / "pyproject.toml")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            'fail-level = "fatal"\n',
            "pyproject.toml:3: [tool.coherence] `fail-level`: expected one of",
        ),
        ("ticks = -3\n", "pyproject.toml:3: [tool.coherence] `ticks`: expected a positive whole"),
        ('select = ["COH8"]\n', "pyproject.toml:3: [tool.coherence] `select`: `COH8` matches no"),
        ("fail_levle = 1\n", "pyproject.toml:3: [tool.coherence] unknown key `fail_levle`"),
        ("linear = 1\n", "`linear`: expected true or false, got 1"),
        ("jobs = -1\n", "`jobs`: expected 0 (one per CPU) or a positive whole number"),
        ("paths = [1]\n", "`paths`: expected a string or a list of strings"),
        ("ticks = \n", "pyproject.toml: not valid TOML"),
    ],
)
def test_errors_name_the_file_line_and_key(project: Path, text: str, error: str) -> None:
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "x"\n[tool.coherence]\n{text}'.replace(
            "[tool.coherence]\n", "[tool.coherence]\n", 1
        )
    )
    # the key is on line 4: the table header is line 3
    with pytest.raises(ConfigError) as info:
        load_config()
    assert error.replace(":3:", ":4:") in info.value.message


def test_unknown_key_suggests_the_right_one(project: Path) -> None:
    (project / "coherence.toml").write_text("\n\nfail_levle = 'error'\n")
    code, _, err = cli("check", "--no-smt", "--no-linear", "specs")
    assert code == 2
    assert err.startswith("error: ") and "coherence.toml:3: unknown key `fail_levle`" in err
    assert "hint: did you mean `fail-level`?" in err


def test_config_paths_and_fail_level_drive_the_check(project: Path) -> None:
    assert cli("check", "--no-smt", "--no-linear")[0] == 2  # no paths anywhere
    (project / "coherence.toml").write_text('paths = ["specs"]\n')
    assert cli("check", "--no-smt", "--no-linear")[0] == 0  # COH506 is a warning
    (project / "coherence.toml").write_text('paths = ["specs"]\nfail-level = "warning"\n')
    assert cli("check", "--no-smt", "--no-linear")[0] == 1
    assert cli("check", "--no-smt", "--no-linear", "--fail-level", "error")[0] == 0  # CLI wins
    (project / "coherence.toml").write_text(
        'paths = ["specs"]\nfail-level = "warning"\nignore = ["COH5"]\n'
    )
    assert cli("check", "--no-smt", "--no-linear")[0] == 0
    assert (
        cli("check", "--no-smt", "--no-linear", "--isolated", "specs", "--fail-level", "warning")[0]
        == 1
    )


def test_config_paths_are_relative_to_the_config_file(project: Path, monkeypatch: Any) -> None:
    (project / "coherence.toml").write_text('paths = ["specs/fleet.coh"]\n')
    monkeypatch.chdir(project / "specs" / "deep")
    code, out, _ = cli("check", "--no-smt", "--no-linear", "--format", "github")
    assert code == 0 and "file=../fleet.coh," in out


def test_solver_limits_reach_the_check_options(project: Path, monkeypatch: Any) -> None:
    import coherence.pipeline as pipeline

    seen: list[Any] = []
    real = pipeline.check_paths

    def spy(paths: Any, options: Any = None, lint_only: bool = False, progress: Any = None) -> Any:
        seen.append(options)
        return real(paths, pipeline.CheckOptions(linear=False, smt=False), lint_only, progress)

    monkeypatch.setattr(pipeline, "check_paths", spy)
    (project / "coherence.toml").write_text(
        'paths = ["specs"]\nhorizon = 7\nrlimit = 99\nticks = 40\nmode = "exact"\nsmt = false\n'
    )
    assert cli("check")[0] == 0
    assert cli("check", "--horizon", "9")[0] == 0
    first, second = seen
    assert (first.horizon, first.rlimit, first.ticks, first.mode, first.smt) == (
        7,
        99,
        40,
        "exact",
        False,
    )
    assert second.horizon == 9


def test_explicit_config_file(project: Path) -> None:
    other = project / "ci.toml"
    other.write_text('paths = ["specs"]\nfail-level = "warning"\n')
    assert cli("check", "--no-smt", "--no-linear", "--config", str(other))[0] == 1
    code, _, err = cli("check", "--config", "nope.toml", "specs")
    assert code == 2 and "no configuration file" in err
