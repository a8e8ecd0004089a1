"""What a user sees from the command line: fitted tables, --version, --json, examples, clear errors."""

import json

import pandas as pd
import pytest

from harness.cli import build_parser, main
from harness.support.render import fit_table, sig, terminal_width


def test_numbers_have_three_significant_figures():
    assert [sig(v) for v in (0.004567, 2.0, 123.456, 98765.4, 3.2e-9, 12, float("nan"))] == \
        ["0.00457", "2.00", "123", "98800", "3.20e-09", "12", ""]


def test_tables_fit_the_width_and_repeat_the_key_column(monkeypatch):
    frame = pd.DataFrame({"layer": ["a", "b"], **{f"backend_{i}": [1.2345 * i, 2.5] for i in range(12)}})
    monkeypatch.setenv("COLUMNS", "60")
    assert terminal_width() == 60
    text = fit_table(frame)
    assert max(len(line) for line in text.splitlines()) <= 60
    blocks = text.split("\n\n")
    assert len(blocks) > 1 and all(block.startswith("layer") for block in blocks)
    assert "12.3" in text  # 1.2345 * 10 to three figures
    monkeypatch.delenv("COLUMNS")
    assert terminal_width() == 100


def test_backends_fits_100_columns(monkeypatch, capsys):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines() if not line.startswith("  ")) <= 100
    assert "padding_mode=reflect" in out and "naive" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("convbench ")


def test_every_subcommand_has_a_description_and_examples():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"backends", "verify", "bench", "shapes", "report", "asv", "env", "run"} <= set(commands)
    for name, sub in commands.items():
        assert sub.epilog and sub.epilog.startswith("examples:\n  convbench"), name
        assert sub.description, name


def test_report_refuses_a_missing_named_input(tmp_path, capsys):
    assert main(["report", "--bench", str(tmp_path / "MISSING.csv"), "--out", str(tmp_path / "s.md")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"convbench report: error: --bench {tmp_path / 'MISSING.csv'}: no such file"]
    assert not (tmp_path / "s.md").exists()


def test_verify_json(tmp_path, capsys):
    out = tmp_path / "verify.csv"
    code = main(["verify", "--backend", "naive", "--cases", "2", "--out", str(out), "--json", "--no-progress"])
    outcome = json.loads(capsys.readouterr().out)
    assert code == 0 and outcome["passed"] is True
    assert outcome["summary"][0]["backend"] == "naive" and outcome["summary"][0]["failed"] == 0
    assert outcome["results_file"] == str(out)
    written = pd.read_csv(out)
    assert {"git_commit", "git_dirty"} <= set(written.columns)  # every results file says which code made it


def test_bench_json(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the machine record goes to ./reports: this test's own folder
    shapes = tmp_path / "tiny.csv"
    shapes.write_text("name,N,C,H,W,O,KH,KW,stride,padding,dilation,groups,op,notes\n"
                      "tiny,1,2,6,6,2,3,3,1,1,1,1,conv2d,\n")
    out = tmp_path / "bench.csv"
    code = main(["bench", "--shapes", str(shapes), "--backends", "im2col", "--budget", "0.01", "--repeat", "1",
                 "--out", str(out), "--json", "--no-progress"])
    outcome = json.loads(capsys.readouterr().out)
    assert code == 0
    metrics = {(row["backend"], row["metric"]) for row in outcome["rows"]}
    assert ("im2col", "gflops") in metrics
    assert "git_commit" in json.loads(out.with_suffix(".json").read_text())["settings"]


def test_shapes_network_prints_totals_and_the_fc_contrast(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # one line per sentence
    assert main(["shapes", "--network", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert "417 kMAC, 865 kFLOP" in out and "61.7 kparameters" not in out and "61.7 k parameters" in out
    assert "CPR 6.75" in out and "receptive field 32 px" in out
    assert "sigmoid 4" in out
