"""Every command in the README's quickstart works as written, on a copy of the project, and the MLflow UI
command serves the store the commands wrote."""

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO

BIN = Path(sys.executable).parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def quickstart_commands() -> list[str]:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line.split("#")[0].strip() for block in blocks for line in block.splitlines() if line.startswith("churnmodel")]


def test_the_docs_build_strictly_and_the_readme_leads_to_every_page(tmp_path):
    """The reference in docs/ builds with mkdocs in strict mode (a broken link or anchor fails), every
    page is in the navigation, and the README's front page links to each."""
    import yaml

    done = subprocess.run([str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]
    listed = {next(iter(item.values())) for item in nav}
    pages = {p.name for p in (REPO / "docs").glob("*.md")}
    assert listed == pages
    assert all(f"(docs/{page})" in README for page in pages - {"index.md"}) and (REPO / "docs/images/report.png").is_file()
    assert len(README.encode()) < 10_000  # a front page, not the reference


def test_quickstart_lists_every_command():
    names = {shlex.split(c)[1] for c in quickstart_commands()}
    assert names >= {"--help", "validate", "features", "train", "explain", "score", "simulate"}
    assert "make demo" in README and "make test" in README


@pytest.mark.slow
def test_quickstart_commands_run_as_written_and_the_ui_serves_the_runs(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(REPO / "configs", project / "configs")
    shutil.copytree(REPO / "data" / "sample", project / "data" / "sample")
    (project / "outputs").mkdir()
    env = {**os.environ, "COLUMNS": "160"}
    for command in quickstart_commands():
        args = shlex.split(command)
        done = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=project, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
    assert {p.name for p in (project / "outputs").iterdir()} >= {"features.parquet", "features.csv", "train_summary.json",
                                                                  "scores.xlsx", "report.html", "sim"}
    assert (project / "mlflow.db").is_file()  # the embedded store lands in the project folder

    ui = next(line for line in README.splitlines() if "mlflow ui" in line).split("#")[0].strip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = shlex.split(ui.replace("--port 5000", f"--port {port} --host 127.0.0.1"))
    server = subprocess.Popen([str(BIN / Path(args[0]).name), *args[1:]], cwd=project, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=5", timeout=1) as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow ui did not start")
        assert "partner-churn" in body
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
