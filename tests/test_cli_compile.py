"""``embedtool compile``: every kernel compiled and cached ahead of time."""

from __future__ import annotations

from embedtool import small


def test_compile_command_compiles_and_says_where_the_cache_is(monkeypatch):
    from typer.testing import CliRunner

    from embedtool import precompile
    from embedtool_cli.app import app

    monkeypatch.setattr(precompile, "DIMS", (8,))
    monkeypatch.setattr(precompile, "_DTYPES", ("float32",))
    result = CliRunner().invoke(app, ["compile"])
    assert result.exit_code == 0, result.output
    assert "compiling: float32 tables of width 8" in result.output
    assert "kernels compiled in " in result.output and small.SMALL_WORK == 1 << 20
