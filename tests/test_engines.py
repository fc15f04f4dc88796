"""The real engines: docs/engines.md's Ray Data and Spark recipes run verbatim (read from the file) and write every
row the single-process CLI writes; ``--vector-type list`` output reads back with the same values in pyarrow,
pandas, polars, DuckDB and Spark; ``vector_type`` changes types, never values."""

import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import embedtool
from embedtool import writers
from embedtool.errors import InvalidArgumentError
from embedtool.vectors import Vectors, save_vectors
from embedtool_cli.app import app

RECIPES = Path(__file__).resolve().parents[1] / "docs" / "engines.md"
WORDS = ["<unk>", "the", "cat", "sat", "on", "mat", "dog", "ran", "far", "away"]
EMBED = ["--column", "tokens", "--keep", "id", "--oov", "unk"]  # the recipes' options, as the CLI takes them
BAG = ["--column", "ids", "--keep", "id", "--mode", "mean"]


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def recipe(heading: str) -> str:
    """The first Python code block under ``## heading`` in docs/engines.md."""
    text = RECIPES.read_text()
    section = text[text.index(f"\n## {heading}\n"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def layout(t: pa.DataType):
    """A type's nesting, without the names of list fields (Spark and Ray name them differently from pyarrow)."""
    if pa.types.is_fixed_size_list(t):
        return ("fixed", t.list_size, layout(t.value_type))
    if pa.types.is_list(t):
        return ("list", layout(t.value_type))
    return str(t)


def assert_same_rows(got: pa.Table, expected: pa.Table):
    """Every row equal, in ``id`` order, and the same column types up to list field names."""
    got, expected = got.sort_by("id"), expected.sort_by("id")
    assert got.column_names == expected.column_names
    assert [layout(t) for t in got.schema.types] == [layout(t) for t in expected.schema.types]
    assert got.cast(expected.schema).equals(expected)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """``glove.arrow``, three Parquet shards (OOV words, empty id lists) and the CLI's single-process outputs."""
    root = tmp_path_factory.mktemp("engines")
    rng = np.random.default_rng(25)
    save_vectors(Vectors(rng.standard_normal((len(WORDS), 4)).astype(np.float32), WORDS), root / "glove.arrow")
    (root / "shards").mkdir()
    words = np.array(WORDS[1:] + ["zebra", "yak"])
    tables = []
    for s in range(3):
        ids = [rng.integers(0, len(WORDS), n).astype(np.int32).tolist() for n in rng.integers(0, 6, 100)]
        tables.append(pa.table({"id": np.arange(100) + 100 * s, "ids": pa.array(ids, pa.list_(pa.int32())),
                                "tokens": rng.choice(words, 100).tolist()}))
        pq.write_table(tables[-1], root / "shards" / f"part-{s}.parquet")
    pq.write_table(pa.concat_tables(tables), root / "all.parquet")
    for vector_type in writers.VECTOR_TYPES:
        for command, options in [("embed", EMBED), ("bag", BAG)]:
            invoke(command, root / "glove.arrow", root / "all.parquet", "-o", root / f"{command}-{vector_type}.arrow",
                   *options, "--vector-type", vector_type, "-q")
    return root


def cli_output(data, command, vector_type) -> pa.Table:
    return pa.ipc.open_file(data / f"{command}-{vector_type}.arrow").read_all()


@pytest.fixture(scope="module")
def ray_job(data):
    """Ray, local, started in a job directory: its workers resolve relative paths against the directory it started
    in."""
    ray = pytest.importorskip("ray")
    job, previous = job_directory(data, "ray-job"), os.getcwd()
    os.chdir(job)
    try:
        ray.init(num_cpus=2, include_dashboard=False)
    finally:
        os.chdir(previous)
    yield job
    ray.shutdown()


def job_directory(data: Path, name: str) -> Path:
    """A fresh directory holding the recipes' inputs, ``shards/`` and ``glove.arrow``."""
    job = data / name
    shutil.copytree(data / "shards", job / "shards")
    shutil.copy(data / "glove.arrow", job / "glove.arrow")
    return job


@pytest.fixture(scope="module")
def spark(data):
    """A ``local[2]`` session started in a job directory: the JVM resolves relative paths against the directory it
    started in, and Spark's Python workers run there."""
    if shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime and there is no `java` on PATH (.ci/run installs one)")
    pyspark_sql = pytest.importorskip("pyspark.sql")
    previous = os.getcwd(), os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers import embedtool from this environment
    os.chdir(job_directory(data, "spark-job"))
    try:
        session = (pyspark_sql.SparkSession.builder.master("local[2]").appName("embedtool-tests")
                   .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate())
    finally:
        os.chdir(previous[0])
    yield session
    session.stop()
    if previous[1] is None:
        os.environ.pop("PYSPARK_PYTHON")
    else:
        os.environ["PYSPARK_PYTHON"] = previous[1]


def run_recipe(heading: str, job: Path, monkeypatch):
    """Run a recipe, verbatim, in ``job``; its outputs ``embedded/`` and ``pooled/`` land there."""
    monkeypatch.chdir(job)
    exec(compile(recipe(heading), str(RECIPES), "exec"), {"__name__": "__main__"})


def test_ray_recipe_writes_what_the_cli_writes(ray_job, data, monkeypatch):
    run_recipe("Ray Data", ray_job, monkeypatch)
    assert_same_rows(pq.read_table(ray_job / "embedded"), cli_output(data, "embed", "fixed"))
    assert_same_rows(pq.read_table(ray_job / "pooled"), cli_output(data, "bag", "fixed"))


def test_spark_recipe_writes_what_the_cli_writes(spark, data, monkeypatch):
    job = data / "spark-job"
    run_recipe("Spark", job, monkeypatch)
    assert_same_rows(pq.read_table(job / "embedded"), cli_output(data, "embed", "list"))
    assert_same_rows(pq.read_table(job / "pooled"), cli_output(data, "bag", "list"))


@pytest.fixture(scope="module")
def sequences(data):
    """``embed --vector-type list`` of the id sequences, as Parquet and Arrow, and the NumPy reference rows."""
    for suffix in ("parquet", "arrow"):
        invoke("embed", data / "glove.arrow", data / "all.parquet", "-o", data / f"sequences.{suffix}",
               "--column", "ids", "--keep", "id", "--vector-type", "list", "-q")
    table = pq.read_table(data / "all.parquet")
    weight = embedtool.load_vectors(data / "glove.arrow").matrix
    return [weight[ids].tolist() for ids in table.column("ids").to_pylist()]


def plain(value):
    """Nested NumPy arrays (pandas' lists) as nested Python lists."""
    if isinstance(value, (np.ndarray, list)):
        return [plain(v) for v in value]
    return value


def test_vector_type_list_reads_back_in_pyarrow_pandas_polars_duckdb(data, sequences):
    import duckdb
    import pandas as pd
    import polars as pl

    parquet, arrow = data / "sequences.parquet", data / "sequences.arrow"
    for table in (pq.read_table(parquet), pa.ipc.open_file(arrow).read_all()):
        assert table.schema.field("embedding").type == pa.list_(pa.list_(pa.float32()))
        assert json.loads(table.schema.metadata[b"embedtool.vector_type"]) == "list"
        assert table.column("embedding").to_pylist() == sequences
    for frame in (pd.read_parquet(parquet), pd.read_feather(arrow)):
        assert plain(list(frame["embedding"])) == sequences
    for frame in (pl.read_parquet(parquet), pl.read_ipc(arrow)):
        assert frame["embedding"].dtype == pl.List(pl.List(pl.Float32))
        assert frame["embedding"].to_list() == sequences
    rows = duckdb.sql(f"SELECT embedding, typeof(embedding) FROM read_parquet('{parquet}') ORDER BY id").fetchall()
    assert [r[0] for r in rows] == sequences and rows[0][1] == "FLOAT[][]"


def test_vector_type_list_reads_back_in_spark(spark, data, sequences):
    rows = spark.read.parquet(str(data / "sequences.parquet")).orderBy("id").collect()
    assert [r["embedding"] for r in rows] == sequences


@pytest.mark.parametrize("shape", [(5,), (3, 2), (2, 3, 2)])
def test_vector_type_changes_types_not_values(tmp_path, shape):
    weight = np.random.default_rng(1).standard_normal((7, 3)).astype(np.float32)
    np.save(tmp_path / "w.npy", weight)
    ids = np.random.default_rng(2).integers(0, 7, shape)
    np.save(tmp_path / "ids.npy", ids)
    for command in ("embed", "bag"):
        out = {}
        for vector_type in writers.VECTOR_TYPES:
            out[vector_type] = tmp_path / f"{command}-{vector_type}.arrow"
            invoke(command, tmp_path / "w.npy", tmp_path / "ids.npy", "-o", out[vector_type], "--vector-type",
                   vector_type, "-q")
        fixed, listed = (pa.ipc.open_file(out[t]).read_all() for t in writers.VECTOR_TYPES)
        column = fixed.column("embedding")
        if isinstance(column.type, pa.FixedShapeTensorType):  # as nested lists: its rows as NumPy tensors
            expected = column.combine_chunks().to_numpy_ndarray().tolist()
        else:
            expected = column.to_pylist()
        assert listed.column("embedding").to_pylist() == expected
        depth = len(shape) if command == "embed" else 1
        assert layout(listed.schema.field("embedding").type) == layout(writers.embedding_type(np.float32, (3,) * depth,
                                                                                            "list"))
        assert json.loads(listed.schema.metadata[b"embedtool.vector_type"]) == "list"
        assert json.loads(fixed.schema.metadata[b"embedtool.vector_type"]) == "fixed"


def test_output_schema_is_embed_tables_schema(data):
    vectors = embedtool.load_vectors(data / "glove.arrow")
    table = pq.read_table(data / "all.parquet")
    for options in [{"column": "tokens", "oov": "unk"}, {"column": "ids", "keep": ["id", "tokens"]},
                    {"column": "ids", "mode": "max", "vector_type": "list"}, {"column": "ids", "vector_type": "list"}]:
        assert embedtool.output_schema(vectors, table.schema, **options) == \
            embedtool.embed_table(table, vectors, **options).schema


def test_unknown_vector_type_is_refused(data):
    result = CliRunner().invoke(app, ["bag", str(data / "glove.arrow"), str(data / "all.parquet"), "-o",
                                      str(data / "never.arrow"), "--column", "ids", "--vector-type", "tuple"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: unknown vector type 'tuple'; choose one of fixed, list"
    assert not (data / "never.arrow").exists()
    with pytest.raises(InvalidArgumentError, match="unknown vector type 'large'"):
        embedtool.embed_table(pq.read_table(data / "all.parquet"), embedtool.load_vectors(data / "glove.arrow"),
                              column="ids", vector_type="large")
