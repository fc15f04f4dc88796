"""Help text as a user reads it, ``--version``, what ``-q`` leaves on stderr, and that help never loads numba."""

import re
import subprocess
import sys

import click
import pytest
from typer.main import get_command
from typer.testing import CliRunner

import embedtool
from embedtool_cli.app import app

runner = CliRunner()
COMMAND = get_command(app)


def _help(*args) -> str:
    result = runner.invoke(app, [*args, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # wrapping may break a bracketed phrase across lines


def _written_help(command: click.Command) -> list[str]:
    """The help text the code gives a command: its docstring and every parameter's help."""
    return [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]


@pytest.mark.parametrize("name", [None, *COMMAND.commands])
def test_help_keeps_every_bracketed_word(name):
    command = COMMAND if name is None else COMMAND.commands[name]
    bracketed = {m for text in _written_help(command) for m in re.findall(r"\[[^\]]*\]", " ".join(text.split()))}
    if name in ("embed", "bag"):
        assert "[distributed]" in "".join(bracketed)  # the case that was lost: "Needs embedtool."
    shown = _help(*([name] if name else []))
    assert [b for b in sorted(bracketed) if b not in shown] == []


def test_embed_help_shows_the_tensor_shape_and_the_extra():
    shown = _help("embed")
    assert "arrow.fixed_shape_tensor with shape [d1, ..., D]" in shown
    assert "Needs embedtool[distributed]." in shown


@pytest.mark.parametrize("name", list(COMMAND.commands))
def test_boolean_flags_show_as_plain_flags(name):
    flags = [p for p in COMMAND.commands[name].params if isinstance(p, click.Option) and p.is_flag]
    shown = runner.invoke(app, [name, "--help"], terminal_width=200).output
    assert "<bool>" not in shown
    for flag in flags:
        line = next(line for line in shown.splitlines() if re.search(rf"(^|\s|,){re.escape(flag.opts[-1])}\s", line))
        assert not re.search(rf"{re.escape(flag.opts[-1])}\s+<", line), line


def test_quiet_silences_the_oov_report(tmp_path):
    (tmp_path / "glove.txt").write_text("<unk> 0 0\nthe 1 2\ncat 3 4\n")
    (tmp_path / "t.txt").write_text("the cat\nzebra the\n")
    args = ["embed", str(tmp_path / "glove.txt"), str(tmp_path / "t.txt"), "-o", str(tmp_path / "o.arrow")]
    loud = runner.invoke(app, args)
    assert loud.exit_code == 0, loud.output
    assert "1 OOV tokens (unk); most frequent: 'zebra' (1)" in loud.stderr
    quiet = runner.invoke(app, [*args, "-q"])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == "" and quiet.stdout == ""


@pytest.mark.parametrize("command", ["embed", "bag", "info", "lookup", "convert", "similar", "analogy", "evaluate"])
def test_every_command_that_reads_weights_takes_the_weight_options(command):
    """One set of weight options (issue 19, case 22): --from, --vocab, --tensor and the text rules."""
    shown = CliRunner().invoke(app, [command, "--help"]).output
    for option in ("--from", "--vocab", "--tensor", "--encoding", "--errors", "--on-bad-row", "--allow-nonfinite",
                   "--duplicates"):
        assert option in shown, (command, option)


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"embedtool {embedtool.__version__}"


@pytest.mark.parametrize("argv", [["--help"], ["embed", "--help"], ["info", "--help"]])
def test_help_does_not_import_numba(argv):
    code = (
        "import sys\n"
        f"sys.argv = ['embedtool', *{argv!r}]\n"
        "from embedtool_cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('NUMBA' if 'numba' in sys.modules else 'CLEAN', file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stderr.strip().endswith("CLEAN")
    assert "Usage" in proc.stdout
