"""Shell completion scripts generated from the command line's parser."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from coherence.cli import build_parser, main
from coherence.completion import commands

BASH = shutil.which("bash")


def script(shell: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    assert main(["completion", shell], out, err) == 0, err.getvalue()
    return out.getvalue()


def complete(words: list[str], cwd: Path | None = None) -> list[str]:
    """What the bash script offers for the last of ``words`` (as bash would call it)."""
    assert BASH is not None
    quoted = " ".join("'" + w + "'" for w in words)
    program = (
        'source /dev/stdin <<< "$COHERENCE_COMPLETION"\n'
        f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
        '_coherence; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run(
        [BASH, "-c", program],
        env={"COHERENCE_COMPLETION": script("bash"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
def test_bash_script_is_valid_and_lists_every_command_and_option() -> None:
    text = script("bash")
    proc = subprocess.run([BASH, "-n"], input=text, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    top, cmds = commands(build_parser())
    names = {c.name for c in cmds}
    assert {"check", "lint", "plot", "simulate", "fmt", "lsp", "completion", "calibrate"} <= names
    for c in cmds:
        assert f"        {c.name})" in text, c.name
        for o in c.options:
            for flag in o.flags:
                assert flag in text, (c.name, flag)
    for o in top:
        assert all(f in text for f in o.flags)


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
def test_bash_completes_commands_options_choices_and_files(tmp_path: Path) -> None:
    assert "check" in complete(["coherence", ""]) and "completion" in complete(["coherence", ""])
    assert complete(["coherence", "li"]) == ["lint"]
    assert complete(["coherence", "check", "--fail-"]) == ["--fail-level"]
    assert complete(["coherence", "check", "--fail-level", ""]) == ["error", "warning", "note"]
    assert complete(["coherence", "completion", "f"]) == ["fish"]
    assert "sarif" in complete(["coherence", "lint", "--format", ""])
    (tmp_path / "fleet.coh").write_text("", encoding="utf-8")
    assert complete(["coherence", "check", "fl"], cwd=tmp_path) == ["fleet.coh"]
    assert complete(["coherence", "plot", "x.coh", "--out", "fl"], cwd=tmp_path) == ["fleet.coh"]
    assert complete(["coherence", "check", "--ticks", "fl"], cwd=tmp_path) == []  # a number


def test_zsh_and_fish_scripts_name_every_command() -> None:
    _, cmds = commands(build_parser())
    zsh, fish = script("zsh"), script("fish")
    assert zsh.startswith("#compdef coherence")
    for c in cmds:
        assert f"                {c.name})" in zsh
        assert f"-n __fish_use_subcommand -a {c.name}" in fish
    assert "'--fail-level[" in zsh and "(error warning note)" in zsh
    assert "-l fail-level -x -a 'error warning note'" in fish
    for shell, check in (("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])):
        if shutil.which(check[0]):
            text = zsh if shell == "zsh" else fish
            proc = subprocess.run(check, input=text, capture_output=True, text=True, timeout=30)
            assert proc.returncode == 0, proc.stderr


def test_unknown_shell_is_a_usage_error() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["completion", "tcsh"], out, err) == 2
    assert "invalid choice" in err.getvalue()
